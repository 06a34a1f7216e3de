"""The admin dashboard's decisions, free of the Functions SDK: sessions, charts, timelines."""
