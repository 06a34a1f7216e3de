"""The Durable Scheduler Function App: every blueprint, registered once."""

import azure.durable_functions as df
import azure.functions as func

# First of ours: every zone from the pinned tzdata package, before anything loads one.
import scheduling.zone_data  # noqa: F401
from blueprints import admin, api, dashboard, flow_control, maintenance, orchestration, reference

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(api.bp)
app.register_functions(admin.bp)
app.register_functions(orchestration.bp)
app.register_functions(maintenance.bp)
app.register_functions(dashboard.bp)
app.register_functions(flow_control.bp)
app.register_functions(reference.bp)
