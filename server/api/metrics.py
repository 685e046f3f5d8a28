"""``GET /metrics``: the node's metrics (server/metrics.py) for Prometheus, to the monitoring network only."""

from __future__ import annotations

from aiohttp import hdrs, web

from ..appkeys import METRICS, SETTINGS
from ..client_address import parse_address
from ..identity.auth import public, token_from
from ..permissions import require_metrics_access

routes = web.RouteTableDef()


@routes.get("/metrics")
@public
async def scrape(request: web.Request) -> web.Response:
    """The metrics in Prometheus's text format (OpenMetrics if asked for). Public at the login level, as a
    scraper has no account; ``permissions.require_metrics_access`` decides by the connection's own peer, never
    X-Forwarded-For, or by the metrics token. Refusals are JSON, as the API's are."""
    settings = request.app[SETTINGS]
    token, source = token_from(request)
    # A request a proxy forwarded is some client's, whatever the proxy's own address (the shipped nginx is on
    # loopback, inside the default networks): only the token opens the metrics to it.
    proxied = hdrs.X_FORWARDED_FOR in request.headers or hdrs.FORWARDED in request.headers
    peer = None if proxied else parse_address(request.remote or "")
    require_metrics_access(peer, settings.metrics_networks, token if source == "bearer" else None,
                           settings.metrics_token)
    body, content_type = await request.app[METRICS].exposition(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})
