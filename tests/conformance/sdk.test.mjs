// The official Sinch Node SDK (@sinch/sdk-core 1.4.0) against the simulator, unchanged but for
// its hostnames: proof that the simulator speaks the real wire format, not just our client's.
// Run by ./run (which starts the simulator and sets SIM_URL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SinchClient } from '@sinch/sdk-core';

const SIM = process.env.SIM_URL;
assert.ok(SIM, 'SIM_URL must point at a running simulator (use ./run)');

/** A Conversation API client of `projectId` (by default a fresh project) in `region`. */
function conversation(region = 'us', projectId = randomUUID()) {
  const sinch = new SinchClient({
    projectId,
    keyId: 'conformance-key',
    keySecret: 'conformance-secret',
    authHostname: SIM,
    conversationHostname: `${SIM}/${region}`,
    conversationTemplatesHostname: `${SIM}/${region}`,
    logger: null, // the SDK logs every non-2xx answer, and many here are expected
  });
  return sinch.conversation;
}

async function stats() {
  return (await fetch(`${SIM}/_sim/stats`)).json();
}

/** The error the SDK throws for a non-2xx answer, with its status and body. */
async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    return { status: e.statusCode, body: typeof e.data === 'string' ? JSON.parse(e.data) : e.data, error: e };
  }
  assert.fail('the call was expected to fail');
}

const smsApp = (name) => ({
  display_name: name,
  channel_credentials: [
    { channel: 'SMS', static_bearer: { claimed_identity: 'plan-a', token: 'sms-token' } },
  ],
});

test('apps: create, get, list, update with update_mask, delete', async () => {
  const c = conversation();
  const created = await c.app.create({ appCreateRequestBody: smsApp('Support') });
  assert.match(created.id, /^[0-9A-HJKMNP-TV-Z]{26}$/, 'a ULID');
  assert.equal(created.display_name, 'Support');
  assert.equal(created.channel_credentials[0].state.status, 'PENDING');
  assert.equal(created.processing_mode, 'DISPATCH');

  const got = await c.app.get({ app_id: created.id });
  assert.equal(got.channel_credentials[0].static_bearer.token, 'sms-token', 'secrets in clear by default');
  assert.equal(got.channel_credentials[0].state.status, 'ACTIVE');
  assert.deepEqual(got.retention_policy, { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 180 });

  const list = await c.app.list({});
  assert.deepEqual(list.apps.map((a) => a.id), [created.id]);

  const updated = await c.app.update({
    app_id: created.id,
    update_mask: ['display_name', 'conversation_metadata_report_view'],
    appUpdateRequestBody: { display_name: 'Support desk', conversation_metadata_report_view: 'FULL', processing_mode: 'CONVERSATION' },
  });
  assert.equal(updated.display_name, 'Support desk');
  assert.equal(updated.conversation_metadata_report_view, 'FULL');
  assert.equal(updated.processing_mode, 'DISPATCH', 'a field outside the mask is not written');

  assert.deepEqual(await c.app.delete({ app_id: created.id }), {});
  const gone = await failure(c.app.get({ app_id: created.id }));
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.status, 'NOT_FOUND');
});

test('apps: another region does not see them, and bad input is a 400 in the API error shape', async () => {
  const projectId = randomUUID();
  const us = conversation('us', projectId);
  const eu = conversation('eu', projectId);
  const created = await us.app.create({ appCreateRequestBody: smsApp('A') });
  assert.deepEqual((await eu.app.list({})).apps, []);
  assert.equal((await failure(eu.app.get({ app_id: created.id }))).status, 404);
  const bad = await failure(us.app.create({ appCreateRequestBody: { display_name: 'x', channel_credentials: [{ channel: 'SMS' }] } }));
  assert.equal(bad.status, 400);
  assert.deepEqual(Object.keys(bad.body.error).sort(), ['code', 'details', 'message', 'status']);
  assert.equal(bad.body.error.code, 400);
  assert.equal(bad.body.error.status, 'INVALID_ARGUMENT');
  assert.match(bad.body.error.message, /exactly one credential object/);
  await us.app.delete({ app_id: created.id });
});

test('webhooks: create, list per app, get, update, delete; five per app; unique target', async () => {
  const c = conversation();
  const app = await c.app.create({ appCreateRequestBody: smsApp('Hooks') });
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const w = await c.webhooks.create({
      webhookCreateRequestBody: {
        app_id: app.id,
        target: `https://hooks.example.com/${i}`,
        target_type: 'HTTP',
        triggers: ['MESSAGE_INBOUND', 'MESSAGE_DELIVERY'],
        secret: 'signing-secret',
        client_credentials: { client_id: 'cid', client_secret: 'csecret', endpoint: 'https://auth.example.com/token' },
      },
    });
    assert.match(w.id, /^[0-9A-Z]{26}$/);
    assert.equal(w.secret, 'signing-secret');
    assert.equal(w.client_credentials.token_request_type, 'BASIC', 'the default is filled');
    ids.push(w.id);
  }
  const sixth = await failure(c.webhooks.create({ webhookCreateRequestBody: { app_id: app.id, target: 'https://hooks.example.com/6' } }));
  assert.equal(sixth.status, 400);
  assert.equal(sixth.body.error.status, 'INVALID_ARGUMENT');

  const listed = await c.webhooks.list({ app_id: app.id });
  assert.deepEqual(listed.webhooks.map((w) => w.id), ids);

  const dup = await failure(c.webhooks.update({
    webhook_id: ids[0], update_mask: ['target'], webhookUpdateRequestBody: { target: 'https://hooks.example.com/1' },
  }));
  assert.equal(dup.status, 400);
  const updated = await c.webhooks.update({
    webhook_id: ids[0],
    update_mask: ['target', 'triggers'],
    webhookUpdateRequestBody: { target: 'https://hooks.example.com/moved', triggers: ['EVENT_INBOUND'] },
  });
  assert.equal(updated.target, 'https://hooks.example.com/moved');
  assert.deepEqual(updated.triggers, ['EVENT_INBOUND']);
  assert.equal(updated.secret, 'signing-secret', 'a field outside the mask stays');
  assert.equal((await c.webhooks.get({ webhook_id: ids[0] })).target, 'https://hooks.example.com/moved');

  assert.deepEqual(await c.webhooks.delete({ webhook_id: ids[0] }), {});
  assert.equal((await c.webhooks.list({ app_id: app.id })).webhooks.length, 4);
  await c.app.delete({ app_id: app.id });
});

test('project settings: absent is 404, create, get, update, delete', async () => {
  const c = conversation();
  const absent = await failure(c.projectSettings.get({}));
  assert.equal(absent.status, 404);
  const created = await c.projectSettings.create({
    createProjectSettingsRequestBody: { contact_settings: { unified_contact_id_enabled: false } },
  });
  assert.equal(created.settings.contact_settings.unified_contact_id_enabled, false);
  assert.ok(created.project_id);
  const updated = await c.projectSettings.update({
    updateProjectSettingsRequestBody: { contact_settings: { unified_contact_id_enabled: true } },
  });
  assert.deepEqual(updated.settings, { contact_settings: { unified_contact_id_enabled: true } });
  assert.deepEqual(await c.projectSettings.get({}), updated);
  await c.projectSettings.delete({});
  assert.equal((await failure(c.projectSettings.get({}))).status, 404);
});

test('identity conflicts: paginated as the SDK expects, and they block unified contact id', async () => {
  const projectId = randomUUID();
  const conflicts = Array.from({ length: 25 }, (_, i) => ({
    identity: `4670000${String(i).padStart(4, '0')}`, channels: ['SMS', 'RCS'], contact_ids: [`a${i}`, `b${i}`],
  }));
  const seeded = await fetch(`${SIM}/_sim/us/projects/${projectId}/identity-conflicts`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(conflicts),
  });
  assert.equal(seeded.status, 204);
  const c = conversation('us', projectId);
  const first = await c.contact.listIdentityConflicts({ page_size: 20 });
  assert.equal(first.data.length, 20);
  assert.equal(first.hasNextPage, true);
  const all = [];
  for await (const conflict of c.contact.listIdentityConflicts({ page_size: 20 })) {
    all.push(conflict);
  }
  assert.deepEqual(all, conflicts);
  const refused = await failure(c.projectSettings.create({
    createProjectSettingsRequestBody: { contact_settings: { unified_contact_id_enabled: true } },
  }));
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.status, 'FAILED_PRECONDITION');
});

test('templates v2: create, get with latest copies, list, translations, update with version, delete', async () => {
  const c = conversation();
  const id = `order-shipped-${Date.now()}`;
  const created = await c.templatesV2.create({
    createTemplateRequestBody: {
      id,
      description: 'Order shipped',
      default_translation: 'en-US',
      translations: [
        { language_code: 'en-US', version: '1', text_message: { text: 'Shipped: ${order}' }, variables: [{ key: 'order', preview_value: '42' }] },
        { language_code: 'sv-SE', version: '1', text_message: { text: 'Skickad: ${order}' } },
      ],
    },
  });
  assert.equal(created.id, id);
  assert.equal(created.version, 1);
  assert.ok(created.create_time instanceof Date, 'the SDK revives RFC 3339 times');
  assert.deepEqual(created.translations[1].variables, [], 'the server fills defaults');
  assert.deepEqual(created.translations[1].channel_template_overrides, {});

  const got = await c.templatesV2.get({ template_id: id });
  assert.equal(got.translations.filter((t) => t.version === 'latest').length, 2);
  assert.equal(got.translations.length, 4);
  const list = await c.templatesV2.list({});
  assert.deepEqual(list.templates.map((t) => t.id), [id]);
  const translations = await c.templatesV2.listTranslations({ template_id: id, language_code: 'sv-SE' });
  assert.deepEqual(translations.translations.map((t) => [t.language_code, t.version]), [['sv-SE', '1']]);

  // As the SDK sends it: no `id` in the body (its type leaves it out; the path names the template).
  const body = {
    version: 1,
    default_translation: 'en-US',
    translations: [{ language_code: 'en-US', version: '2', text_message: { text: 'On its way: ${order}' } }],
  };
  const updated = await c.templatesV2.update({ template_id: id, updateTemplateRequestBody: body });
  assert.equal(updated.version, 2);
  assert.deepEqual(updated.translations.map((t) => t.language_code), ['en-US'], 'PUT replaces the whole template');
  const stale = await failure(c.templatesV2.update({ template_id: id, updateTemplateRequestBody: body }));
  assert.equal(stale.status, 409);
  assert.equal(stale.body.error.status, 'ABORTED');
  const again = await failure(c.templatesV2.create({ createTemplateRequestBody: { ...body, id } }));
  assert.equal(again.status, 409);
  assert.equal(again.body.error.status, 'ALREADY_EXISTS');

  assert.deepEqual(await c.templatesV2.delete({ template_id: id }), {});
  assert.equal((await failure(c.templatesV2.get({ template_id: id }))).status, 404);
});

test('a channel whose credential the channel refuses reads back FAILING', async () => {
  const c = conversation();
  const app = await c.app.create({
    appCreateRequestBody: {
      display_name: 'Failing',
      channel_credentials: [{ channel: 'SMS', static_bearer: { claimed_identity: 'plan-a', token: 'fail-expired-token' } }],
    },
  });
  assert.equal(app.channel_credentials[0].state.status, 'PENDING');
  const got = await c.app.get({ app_id: app.id });
  assert.equal(got.channel_credentials[0].state.status, 'FAILING');
  assert.match(got.channel_credentials[0].state.description, /refused the credential/);
  await c.app.delete({ app_id: app.id });
});

test('a key used for a project it is not bound to is answered 403', async () => {
  const bound = (projectId) => new SinchClient({
    projectId,
    keyId: 'bound-key',
    keySecret: 'bound-secret',
    authHostname: SIM,
    conversationHostname: `${SIM}/us`,
    conversationTemplatesHostname: `${SIM}/us`,
    logger: null,
  }).conversation;
  assert.deepEqual((await bound('bound-project').app.list({})).apps, []);
  const refused = await failure(bound(randomUUID()).app.list({}));
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.message, 'the provided client_id and client_secret are not associated with the project_id');
});

test('an expired token is renewed by the SDK, as the API signals it', async () => {
  const c = conversation();
  await c.app.list({});
  const before = await stats();
  assert.equal((await fetch(`${SIM}/_sim/expire-tokens`, { method: 'POST' })).status, 204);
  await c.app.list({});
  const after = await stats();
  assert.equal(after.requests['POST /oauth2/token'] - before.requests['POST /oauth2/token'], 1);
});
