import http from 'node:http';
import { Webhook } from 'standardwebhooks'; // npm install standardwebhooks

const secret = process.env.WABRIDGE_WEBHOOK_SECRET; // the "secret" of the 201 from POST /v1/webhooks
const wh = secret.startsWith('whsec_')
  ? new Webhook(secret)
  : new Webhook(new TextEncoder().encode(secret), { format: 'raw' });

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c)).on('end', () => {
    try {
      const delivery = wh.verify(Buffer.concat(chunks), req.headers); // throws unless signed and fresh
      console.log('verified', delivery.event, delivery.idempotencyKey);
      res.writeHead(204).end();
    } catch {
      res.writeHead(401).end();
    }
  });
}).listen(Number(process.env.PORT ?? 8000), '127.0.0.1');
