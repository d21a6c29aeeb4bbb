// The benchmark's peer (scripts/bench): the official Sinch Node SDK reading a project's whole
// inventory the way a script would (list apps, then each app's webhooks, the templates, the
// settings), either one request at a time or all in flight at once. Prints one JSON line.
//
//   node read-inventory.mjs SIM_URL PROJECT REGION sequential|parallel
import { SinchClient } from '@sinch/sdk-core';

const [sim, projectId, region, mode] = process.argv.slice(2);
const c = new SinchClient({
  projectId,
  keyId: 'bench-key',
  keySecret: 'bench-secret',
  authHostname: sim,
  conversationHostname: `${sim}/${region}`,
  conversationTemplatesHostname: `${sim}/${region}`,
  logger: null,
}).conversation;

let errors = 0;
const attempt = (p) => p.catch(() => { errors += 1; return null; });

const started = performance.now();
let apps = [];
let webhooks = 0;
if (mode === 'sequential') {
  apps = (await attempt(c.app.list({})))?.apps ?? [];
  for (const app of apps) {
    webhooks += (await attempt(c.webhooks.list({ app_id: app.id })))?.webhooks?.length ?? 0;
  }
  await attempt(c.templatesV2.list({}));
  await attempt(c.projectSettings.get({}));
} else {
  // The lists that need nothing first go out together, then every app's webhooks at once.
  const [list] = await Promise.all([
    attempt(c.app.list({})),
    attempt(c.templatesV2.list({})),
    attempt(c.projectSettings.get({})),
  ]);
  apps = list?.apps ?? [];
  const all = await Promise.all(apps.map((app) => attempt(c.webhooks.list({ app_id: app.id }))));
  webhooks = all.reduce((n, r) => n + (r?.webhooks?.length ?? 0), 0);
}
const ms = performance.now() - started;
console.log(JSON.stringify({ ms, apps: apps.length, webhooks, errors }));
