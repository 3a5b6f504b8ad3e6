"""The monitor's health check as an activity: ``check_health_endpoint``.

An activity rather than the host's ``call_http`` because only code in the app can refuse an
address a URL resolves to *at the moment of the call* (``blueprints.monitors.target``): the
host's HTTP action fetches whatever the name resolves to then, and hands the body back. A GET
is safe to repeat, so running at least once is fine.
"""

import azure.durable_functions as df

from blueprints.monitors.target import check_target
from models.monitors import HealthCheckRequest, HealthCheckResult

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
async def check_health_endpoint(request: dict) -> dict:
    """GET the monitored URL once; returns its status code or why there is none, no body.

    Parameters
    ----------
    request : dict
        A :class:`~models.monitors.HealthCheckRequest` as JSON.

    Returns
    -------
    dict
        A :class:`~models.monitors.HealthCheckResult` as JSON.
    """
    check = HealthCheckRequest.model_validate(request)
    outcome = await check_target(check.url)
    return HealthCheckResult(status_code=outcome.status_code, error=outcome.error).to_wire()
