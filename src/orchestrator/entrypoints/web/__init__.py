"""The web server of ``orchestrator serve``: pages, the user API and the machine API."""

from orchestrator.entrypoints.web.app import create_app, webui_dir
from orchestrator.entrypoints.web.state import setup_link

__all__ = ["create_app", "setup_link", "webui_dir"]
