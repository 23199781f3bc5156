import os
from http.server import BaseHTTPRequestHandler, HTTPServer
from standardwebhooks.webhooks import Webhook  # pip install standardwebhooks

secret = os.environ["WABRIDGE_WEBHOOK_SECRET"]  # the "secret" of the 201 from POST /v1/webhooks
wh = Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            delivery = wh.verify(body, dict(self.headers))  # raises unless signed and fresh
        except Exception:
            self.send_response(401), self.end_headers()
            return
        print("verified", delivery["event"], delivery["idempotencyKey"], flush=True)
        self.send_response(204), self.end_headers()

HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver).serve_forever()
