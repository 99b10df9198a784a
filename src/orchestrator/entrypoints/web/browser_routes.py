"""The browser API's declared routes, each served by its handler under the declared path.

:data:`~orchestrator.adapters.browser_api.BROWSER_ROUTES` says each route's
method and path; this module only says which handler answers it, so a route
cannot be declared without being served, nor served under another path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web

from orchestrator.adapters.browser_api import BROWSER_ROUTES
from orchestrator.entrypoints.web import chat_api, commands_api, jobs_api, questions_api, user_api

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The handler of each declared route, by the route's name.
HANDLERS: Final[Mapping[str, Handler]] = {
    "list_machines": user_api.list_machines,
    "list_workers": user_api.list_workers,
    "start_session": chat_api.start_session,
    "send_message": chat_api.send_message,
    "list_permissions": chat_api.list_permissions,
    "answer_permission": chat_api.answer_permission,
    "list_questions": questions_api.list_questions,
    "answer_question": questions_api.answer_question,
    "dismiss_question": questions_api.answer_question,
    "create_command": commands_api.create_command,
    "list_commands": commands_api.list_commands,
    "get_command": commands_api.get_command,
    "list_jobs": jobs_api.list_jobs,
    "create_job": jobs_api.create_job,
    "get_job": jobs_api.get_job,
    "run_job_now": jobs_api.run_job_now,
    "list_job_runs": jobs_api.list_job_runs,
}

#: The router's name of a declared route that other code looks up (e.g. its body limit).
ROUTE_NAMES: Final[Mapping[str, str]] = {"send_message": chat_api.SEND_MESSAGE_ROUTE}


def add_routes(router: web.UrlDispatcher, handlers: Mapping[str, Handler] = HANDLERS) -> None:
    """Register every declared route, with its method and path, to its handler in ``handlers``."""
    missing, unknown = BROWSER_ROUTES.keys() - handlers.keys(), handlers.keys() - BROWSER_ROUTES
    if missing or unknown:
        raise ValueError(
            f"Every declared browser route needs one handler: none for {sorted(missing)},"
            f" no route for {sorted(unknown)}."
        )
    served: dict[tuple[str, str], Handler] = {}
    for name, route in BROWSER_ROUTES.items():
        key, handler = (route.method, route.path), handlers[name]
        if key in served:
            # Two calls of one route (answer and dismiss a question): one handler serves both.
            if served[key] is not handler:
                raise ValueError(f"{route.method} {route.path} is declared with two handlers.")
            continue
        served[key] = handler
        router.add_route(route.method, route.path, handler, name=ROUTE_NAMES.get(name))
