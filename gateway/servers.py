"""Real HTTP servers (waitress) in threads: the bridge and the sandbox each get their own."""

from __future__ import annotations

import threading

from waitress.server import create_server


class ServerThread:
    """A waitress server on its own socket map and thread pool; ``port=0`` picks a free port."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, threads: int = 8, **kw):
        self.server = create_server(
            app, host=host, port=port, threads=threads, ident="smsbridge", clear_untrusted_proxy_headers=True,
            max_request_header_size=1 << 20, **kw,
        )
        self.host = host
        self.port: int = self.server.effective_port  # type: ignore[union-attr]
        self.thread = threading.Thread(target=self.server.run, name=f"waitress-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.close()
        self.thread.join(timeout=5)
