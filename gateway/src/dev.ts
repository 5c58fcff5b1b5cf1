/**
 * `make run`: one gateway on embedded defaults (in-memory state, no Redis, no NATS, a generated dev secret),
 * with a ready token for a demo tenant and user and the commands to try it. Not for production: the secret
 * and the service key are new on every start.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { parseConfig } from './config.ts';
import { createLogger } from './log.ts';
import { run } from './main.ts';

const DEMO_TENANT = 'demo';
const DEMO_USER = 'demo-user';

const secret = randomBytes(32).toString('base64url');
const serviceKey = `dev-${randomBytes(16).toString('hex')}`;
const config = parseConfig({
  PORT: process.env['PORT'] ?? '8081',
  HOST: process.env['HOST'] ?? '0.0.0.0',
  LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
  JWT_SECRET_KEY: secret,
  JWT_ALGORITHMS: 'HS256',
  SERVICE_API_KEYS: `dev:${serviceKey}`,
  CORS_ALLOWED_ORIGINS: '*',
});
const logger = createLogger(config.logLevel, process.stderr);
const gateway = await run(config, logger);
const port = (gateway.http.address() as { port: number }).port;

const token = await new SignJWT({ tenant_id: DEMO_TENANT, roles: ['publisher'], orgs: ['demo-org'], name: 'Demo User' })
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setSubject(DEMO_USER)
  .setIssuedAt()
  .setExpirationTime('24h')
  .sign(new TextEncoder().encode(secret));

const base = `localhost:${port}`;
process.stdout.write(`
Realtime gateway (development defaults) on http://${base}
  demo tenant: ${DEMO_TENANT}    demo user: ${DEMO_USER}    roles: publisher    orgs: demo-org

DEV_TOKEN=${token}
SERVICE_KEY=${serviceKey}

Plain JSON WebSocket (seed 000's wscat walk-through):
  npx wscat -c "ws://${base}/ws?tenant_id=${DEMO_TENANT}" -H "Authorization: Bearer ${token}"
  > {"type":"subscribe","topics":["weather","alerts"]}
  > {"type":"ping"}

socket.io (from this repository, where socket.io-client is installed):
  node -e 'const s=require("socket.io-client").io("http://${base}",{auth:{token:process.argv[1]},query:{tenant_id:"${DEMO_TENANT}"}});s.onAny((e,m)=>console.log(e,JSON.stringify(m)));s.on("connected",()=>s.emit("subscribe",{topics:["weather"]},r=>console.log("ack",JSON.stringify(r))))' ${token}

Publish as a backend service:
  curl -s -X POST http://${base}/broadcast -H "Authorization: Bearer ${serviceKey}" -H 'content-type: application/json' \\
    -d '{"tenant_id":"${DEMO_TENANT}","room":"weather","message":{"event_type":"weather.alert","text":"Storm expected"}}'

Metrics: curl -s http://${base}/metrics    Health: curl -s http://${base}/healthz
`);
