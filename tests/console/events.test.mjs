// Console: EventBridge rules, the pattern playground, and SNS topics with their subscriptions.
import assert from 'node:assert/strict';
import { useConsole, unique, open, expectVisible, expectAttached, texts, screenshot, pageText } from './harness.mjs';

const { test, server } = useConsole();

const STOPPED_PATTERN = { source: ['aws.ecs'], 'detail-type': ['ECS Task State Change'], detail: { lastStatus: ['STOPPED'] } };
const ecsEvent = (lastStatus) => JSON.stringify({
  version: '0', id: '7e1d3b2a-0000-4000-8000-000000000001', 'detail-type': 'ECS Task State Change', source: 'aws.ecs',
  account: '000000000000', time: '2026-11-23T10:00:00Z', region: 'us-east-1', resources: [],
  detail: { lastStatus, desiredStatus: 'STOPPED', group: 'family:web' },
}, null, 2);

// The verdict after submitting (a full page load, or an in-place update when JS enhances the form).
async function waitVerdict(page) {
  const verdict = await expectVisible(page, page.locator('#verdict', { hasText: /match/i }), 'a #verdict saying "matches" or "does not match" after submitting', 10_000);
  await page.waitForLoadState('load');
  return verdict;
}

// One rule with the STOPPED pattern and a CloudWatch Logs target, shared by the tests.
let rule;
function stoppedRule() {
  rule ??= (async () => {
    const name = unique('ecs-stopped');
    await server.events('PutRule', { Name: name, EventPattern: JSON.stringify(STOPPED_PATTERN) });
    await server.createLogGroup(`/e2e/${name}`);
    await server.events('PutTargets', {
      Rule: name,
      Targets: [{ Id: 'to-logs', Arn: `arn:aws:logs:us-east-1:000000000000:log-group:/e2e/${name}` }],
    });
    await server.events('PutEvents', {
      Entries: [{ Source: 'aws.ecs', DetailType: 'ECS Task State Change', Detail: JSON.stringify({ lastStatus: 'STOPPED' }) }],
    });
    return name;
  })();
  return rule;
}

test('rules: list and rule page', async ({ page }) => {
  const name = await stoppedRule();
  await open(page, server, '/console/rules');
  const row = page.locator(`#rules tr.rule[data-rule="${name}"]`);
  await expectVisible(page, row, `the row of rule ${name} in #rules`);
  await screenshot(page, 'rules');
  const link = row.locator('a.rule-link').first();
  const href = await link.getAttribute('href');
  assert.equal(new URL(href, server.base).pathname, `/console/rules/default/${name}`, `a.rule-link href should be /console/rules/default/${name}, is ${href}`);
  await Promise.all([page.waitForURL((u) => u.pathname === `/console/rules/default/${name}`), link.click()]);

  const pattern = await expectVisible(page, '#pattern', 'the rule\'s #pattern');
  assert.match(await pattern.textContent(), /aws\.ecs/, '#pattern should show the rule\'s event pattern');
  const targets = await expectAttached(page, '#targets', 'the rule\'s #targets');
  assert.match(await targets.textContent(), /to-logs/, '#targets should list the target "to-logs"');
  await expectAttached(page, '#deliveries', 'the rule\'s #deliveries');
});

test('playground: a rule against a non-matching event explains the failed condition', async ({ page }) => {
  const name = await stoppedRule();
  await open(page, server, '/console/playground');
  const form = await expectVisible(page, 'form#playground', 'the playground form');
  assert.equal((await form.getAttribute('method') || '').toLowerCase(), 'post', 'form#playground should use method POST');
  await form.locator('select[name=rule]').selectOption(name).catch(async (e) => {
    const options = await texts(page, 'select[name=rule] option');
    throw new Error(`cannot pick rule ${name} in select[name=rule] (options: ${JSON.stringify(options)}): ${e.message.split('\n')[0]}`);
  });
  await form.locator('textarea[name=event]').fill(ecsEvent('RUNNING'));
  await form.locator('button[type=submit]').click();
  const verdict = await waitVerdict(page);
  assert.match(await verdict.textContent(), /does not match/i, '#verdict should say "does not match" for lastStatus RUNNING');
  const failed = await texts(page, 'tr.condition.failed');
  assert.ok(failed.some((row) => row.includes('lastStatus')),
    `a tr.condition.failed row should name detail.lastStatus; failed rows: ${JSON.stringify(failed)}; page: ${await pageText(page, 600)}`);
  await screenshot(page, 'playground');
});

test('playground: ?rule= preselects the rule, and a matching event matches', async ({ page }) => {
  const name = await stoppedRule();
  await open(page, server, `/console/playground?rule=${encodeURIComponent(name)}`);
  const form = await expectVisible(page, 'form#playground', 'the playground form');
  // The option's value may be the bare name or <bus>/<name>; its label is the rule's name.
  const picked = await form.locator('select[name=rule]').evaluate((sel) => ({ value: sel.value, label: sel.selectedOptions[0]?.textContent.trim() }));
  assert.ok([name, `default/${name}`].includes(picked.value) || picked.label === name,
    `?rule=${name} should preselect that rule in select[name=rule]; selected is value=${JSON.stringify(picked.value)} label=${JSON.stringify(picked.label)}`);
  await form.locator('textarea[name=event]').fill(ecsEvent('STOPPED'));
  await form.locator('button[type=submit]').click();
  const verdict = await waitVerdict(page);
  const text = await verdict.textContent();
  assert.ok(/matches/i.test(text) && !/does not match/i.test(text), `#verdict should say the event matches, says ${JSON.stringify(text.trim())}`);
  assert.equal(await page.locator('tr.condition.failed').count(), 0, 'a matching event should have no tr.condition.failed');
});

test('playground: a pattern typed in the textarea (no rule)', async ({ page }) => {
  await open(page, server, '/console/playground');
  const form = await expectVisible(page, 'form#playground', 'the playground form');
  await form.locator('select[name=rule]').selectOption('');
  await form.locator('textarea[name=pattern]').fill(JSON.stringify({ detail: { lastStatus: ['STOPPED'] } }));
  await form.locator('textarea[name=event]').fill(ecsEvent('RUNNING'));
  await form.locator('button[type=submit]').click();
  const verdict = await waitVerdict(page);
  assert.match(await verdict.textContent(), /does not match/i, '#verdict for a typed pattern');
  const failed = await texts(page, 'tr.condition.failed');
  assert.ok(failed.some((row) => row.includes('lastStatus')), `a tr.condition.failed row should name lastStatus; failed rows: ${JSON.stringify(failed)}`);
});

test('topics: a topic and its pending subscription', async ({ page }) => {
  const name = unique('alerts');
  const arn = await server.createTopic(name);
  await server.subscribe(arn, 'http', 'http://127.0.0.1:9/hook');

  await open(page, server, '/console/topics');
  await expectVisible(page, '#topics', 'the topic table #topics');
  const topics = await page.locator('#topics').textContent();
  assert.ok(topics.includes(name), `#topics should list the topic ${name}; it has ${JSON.stringify(topics.replace(/\s+/g, ' ').slice(0, 500))}`);
  const sub = page.locator('tr.subscription', { hasText: '127.0.0.1:9/hook' });
  await expectVisible(page, sub, 'the tr.subscription of http://127.0.0.1:9/hook');
  assert.equal((await sub.locator('.sub-status').first().textContent()).trim(), 'PendingConfirmation', 'the subscription\'s .sub-status');
  await screenshot(page, 'topics');
});
