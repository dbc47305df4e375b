// Console: ECS tasks (a failed task, run again, a running task's live logs and stop), the overview's
// figures, and reading without JavaScript. Tasks run as local processes (--runtime process).
import assert from 'node:assert/strict';
import {
  useConsole, unique, open, expectVisible, expectAttached, eventually, texts, screenshot, pageText,
} from './harness.mjs';

const { test, server } = useConsole();
const q = (params) => new URLSearchParams(params).toString();

// One failed task (exit code 3, lines "starting" and "boom" in /ecs/e2e), shared by the tests.
let failed;
function failedTask() {
  failed ??= (async () => {
    const family = unique('e2e-fail');
    await server.registerTaskDefinition(family, 'echo starting; echo boom >&2; exit 3');
    const { arn, id } = await server.runTask(family);
    const task = await server.waitTaskStopped(arn);
    assert.equal(task.containers?.[0]?.exitCode, 3, `precondition: the API should report exit code 3, reports ${JSON.stringify(task.containers)}`);
    const stream = `ecs/app/${id}`;
    await server.waitLogLines('/ecs/e2e', stream, ['starting', 'boom']);
    return { family, arn, id, stream };
  })();
  return failed;
}

/** The text of `selector` inside `scope`, trimmed, failing clearly when it is missing. */
async function cellText(page, scope, selector, what) {
  const loc = scope.locator(selector);
  if ((await loc.count()) === 0) throw new Error(`${what}: no ${selector} in it (${page.url()}); the page shows: ${await pageText(page)}`);
  return (await loc.first().textContent()).trim();
}

test('failed task: list row, task page with exit code and logs, run again', async ({ page }) => {
  const { id } = await failedTask();

  await open(page, server, '/console/tasks');
  const row = page.locator(`#tasks tr.task[data-task-id="${id}"]`);
  await expectVisible(page, row, `the row of task ${id} in #tasks`);
  assert.match(await cellText(page, row, '.status', 'the task row'), /STOPPED/, 'the row\'s .status should say STOPPED');
  assert.equal(await cellText(page, row, '.exit-code', 'the task row'), '3', 'the row\'s .exit-code should be 3');
  await expectAttached(page, row.locator('.duration'), 'the row\'s .duration cell');
  await expectAttached(page, row.locator('.reason'), 'the row\'s .reason cell');
  await screenshot(page, 'tasks');

  const link = row.locator('a.task-link');
  assert.equal(new URL(await link.first().getAttribute('href'), server.base).pathname, `/console/tasks/${id}`, 'a.task-link should go to /console/tasks/<id>');
  await Promise.all([page.waitForURL((u) => u.pathname === `/console/tasks/${id}`), link.first().click()]);

  await expectVisible(page, '#task', 'the task page (#task)');
  assert.match(await cellText(page, page.locator('#task'), '.status', '#task'), /STOPPED/, '#task .status should say STOPPED');
  const container = page.locator('.container[data-name="app"]');
  await expectAttached(page, container, 'the container .container[data-name="app"]');
  assert.match(await cellText(page, container, '.exit-code', 'the app container'), /(^|\D)3(\D|$)/, 'the app container\'s .exit-code should show 3');
  await expectVisible(page, '.task-logs .event .msg', 'the task\'s log lines in .task-logs');
  const logs = await texts(page, '.task-logs .event .msg');
  for (const want of ['starting', 'boom']) {
    assert.ok(logs.includes(want), `.task-logs should have the line "${want}"; has ${JSON.stringify(logs)}`);
  }
  assert.equal(await page.locator('form#stop button[type=submit]').count(), 0, 'a stopped task should offer no form#stop');
  await screenshot(page, 'task-failed');

  // Run again: a new task of the same definition, and its page.
  const again = await expectVisible(page, 'form#run-again button[type=submit]', 'the run-again button');
  await Promise.all([
    page.waitForURL((u) => /^\/console\/tasks\/[^/]+$/.test(u.pathname) && u.pathname !== `/console/tasks/${id}`, { timeout: 15_000 }),
    again.click(),
  ]);
  await expectVisible(page, '#task', 'the new task\'s page (#task) after run-again');
  const newId = new URL(page.url()).pathname.split('/').pop();
  assert.notEqual(newId, id, 'run-again should land on a different task');
});

test('running task: new log lines appear without reload, then stop', async ({ page }) => {
  const family = unique('e2e-run');
  const mark = unique('second');
  await server.registerTaskDefinition(family, `echo first; sleep 3; echo ${mark}; exec sleep 60`);
  const { arn, id } = await server.runTask(family);
  await eventually(async () => (await server.describeTask(arn)).lastStatus === 'RUNNING', { timeout: 15_000, message: `precondition: task ${id} should be RUNNING` });

  await open(page, server, `/console/tasks/${id}`);
  await expectVisible(page, '#task', 'the running task\'s page');
  assert.match(await cellText(page, page.locator('#task'), '.status', '#task'), /RUNNING|PENDING|PROVISIONING/, '#task .status of a running task');
  // The second line is printed ~3 s after start: it must show up on the open page by itself.
  try {
    await page.locator('.task-logs .event .msg', { hasText: mark }).first().waitFor({ state: 'visible', timeout: 10_000 });
  } catch {
    throw new Error(`"${mark}" did not appear in .task-logs within 10 s without reloading; .task-logs has ${JSON.stringify(await texts(page, '.task-logs .event .msg'))}`);
  }

  const stop = await expectVisible(page, 'form#stop button[type=submit]', 'the stop button of a running task');
  await Promise.all([page.waitForLoadState('load'), stop.click()]);
  await server.waitTaskStopped(arn, 45_000);
  await eventually(async () => {
    await page.goto(server.url(`/console/tasks/${id}`));
    return /STOPPED/.test(await page.locator('#task .status').first().textContent());
  }, { timeout: 10_000, interval: 500, message: async () => `after Stop, /console/tasks/${id} should show STOPPED; shows ${await pageText(page, 400)}` });
});

test('overview: figures and the ingest chart', async ({ page }) => {
  await failedTask();
  await server.seedStream(`/e2e/${unique('overview')}`, 's', Array.from({ length: 50 }, (_, i) => `overview line ${i}`));

  await open(page, server, '/');
  await expectVisible(page, '#overview', '#overview at /');
  for (const stat of ['ingest-rate', 'stored-bytes', 'tasks-running', 'tasks-failed', 'failed-deliveries']) {
    const el = await expectAttached(page, `[data-stat="${stat}"]`, `the figure [data-stat="${stat}"]`);
    assert.match(await el.textContent(), /\d/, `[data-stat="${stat}"] should hold a number`);
  }
  const failedText = (await page.locator('[data-stat="tasks-failed"]').first().textContent()).trim();
  const n = Number((failedText.match(/\d[\d,]*/) || ['NaN'])[0].replace(/,/g, ''));
  assert.ok(n >= 1, `[data-stat="tasks-failed"] should be >= 1 after a task exited with 3, is "${failedText}"`);
  await expectAttached(page, 'svg#ingest-chart', 'the ingest chart svg#ingest-chart');
  for (const href of ['/console/logs', '/console/tasks', '/console/rules', '/console/playground', '/console/topics']) {
    await expectAttached(page, `nav a[href="${href}"]`, `the nav link to ${href}`);
  }
  // /console is the overview too
  await open(page, server, '/console');
  await expectAttached(page, '#overview', '#overview at /console');
  await open(page, server, '/');
  await screenshot(page, 'overview');
});

test('no JavaScript: group list, stream page and task page are readable', async ({ newContext }) => {
  const { id, stream } = await failedTask();
  const page = await (await newContext({ javaScriptEnabled: false })).newPage();

  await open(page, server, '/console/logs');
  await expectVisible(page, page.locator('#groups a.group-link', { hasText: '/ecs/e2e' }), 'the group /ecs/e2e in #groups without JS');

  await open(page, server, `/console/logs/stream?${q({ group: '/ecs/e2e', stream })}`);
  await expectVisible(page, '#events .event .msg', 'events on the stream page without JS');
  const lines = await texts(page, '#events .event .msg');
  assert.ok(lines.includes('starting') && lines.includes('boom'), `without JS the stream page should show "starting" and "boom", shows ${JSON.stringify(lines)}`);

  await open(page, server, `/console/tasks/${id}`);
  await expectVisible(page, '#task', 'the task page without JS');
  assert.match(await page.locator('#task .status').first().textContent(), /STOPPED/, 'without JS #task .status should say STOPPED');
  assert.match(await page.locator('.container[data-name="app"] .exit-code').first().textContent(), /3/, 'without JS the exit code 3 should show');
  const logs = await texts(page, '.task-logs .event .msg');
  assert.ok(logs.includes('starting') && logs.includes('boom'), `without JS .task-logs should show "starting" and "boom", shows ${JSON.stringify(logs)}`);
});
