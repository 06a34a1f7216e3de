from scheduler_client.cli import main

main()
