"""The web interface: static files shipped inside the package, served by Vigil itself.

There is no build step and no Node.js at run time: the UI is plain ES modules and CSS
under ``static/``. ``web_router()`` (or ``mount_web(app)``) gives the routes that serve them; see
:mod:`vigil.web.mount` for the security headers they carry.
"""

from vigil.web.mount import CONTENT_SECURITY_POLICY, STATIC_DIR, mount_web, web_router

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "mount_web", "web_router"]
