// Console: sign-in and what each access key may do. The server checks SigV4 signatures (no
// --no-auth) with three keys from a lookout.toml: admin (full), reader (read-only) and team-a (logs
// under /team-a/ only); the harness seeds as admin, signing every request.
import assert from 'node:assert/strict';
import {
  useConsole, unique, open, sleep, expectVisible, eventually, texts, screenshot, pageText,
  signIn, submitSignIn, sessionCookie,
} from './harness.mjs';

const ADMIN = { id: 'admin', secret: 'admin-secret-1' };
const READER = { id: 'reader', secret: 'reader-secret-2' };
const TEAM_A = { id: 'team-a', secret: 'team-a-secret-3' };

const { test, server } = useConsole({
  credentials: ADMIN,
  config: `
[[access_keys]]
id = "admin"
secret = "admin-secret-1"
policy = "full"

[[access_keys]]
id = "reader"
secret = "reader-secret-2"
policy = "read-only"

[[access_keys]]
id = "team-a"
secret = "team-a-secret-3"
grants = [ { services = ["logs"], access = "full", log_group_prefixes = ["/team-a/"] } ]
`,
});
const q = (params) => new URLSearchParams(params).toString();

// Seeded once as admin: a group per team with one stream and one line each, and a failed task.
let seeded;
function seed() {
  seeded ??= (async () => {
    const stream = unique('s');
    const lines = { '/team-a/web': unique('line-a'), '/team-b/web': unique('line-b') };
    for (const [group, line] of Object.entries(lines)) await server.seedStream(group, stream, [line]);
    const family = unique('e2e-fail');
    await server.registerTaskDefinition(family, 'echo starting; echo boom >&2; exit 3');
    const { arn, id } = await server.runTask(family);
    const task = await server.waitTaskStopped(arn);
    assert.equal(task.containers?.[0]?.exitCode, 3, `precondition: the failed task should exit with 3, the API reports ${JSON.stringify(task.containers)}`);
    return { stream, lines, task: { family, arn, id } };
  })();
  return seeded;
}

/** Asserts the page is the sign-in page (`form#login` with key_id and secret) asking to go back to `next`. */
async function expectSignInPage(page, next, what) {
  const url = new URL(page.url());
  assert.equal(url.pathname, '/console/login', `${what}: should land on /console/login, is on ${page.url()}; the page shows: ${await pageText(page, 400)}`);
  if (next !== undefined) {
    assert.equal(url.searchParams.get('next'), next, `${what}: the sign-in page's next parameter`);
  }
  await expectVisible(page, 'form#login', `${what}: the sign-in form form#login`);
  await expectVisible(page, 'form#login input[name="key_id"]', `${what}: the key id input`);
  await expectVisible(page, 'form#login input[name="secret"]', `${what}: the secret input`);
}

/** Asserts the page answered 403 "Not allowed" and names `mustName` (e.g. the action). */
async function expectNotAllowed(page, resp, mustName, what) {
  assert.equal(resp.status(), 403, `${what}: should answer HTTP 403, answered ${resp.status()}; the page shows: ${await pageText(page, 600)}`);
  const h1 = (await (await expectVisible(page, 'h1', `${what}: the page's heading`)).textContent()).trim();
  assert.equal(h1, 'Not allowed', `${what}: the heading`);
  const text = await pageText(page, 5000);
  for (const want of mustName) assert.ok(text.includes(want), `${what}: the page should name ${want}; it shows: ${text}`);
}

test('API: unsigned requests are refused, the harness\'s signed ones accepted', async () => {
  await seed();
  const r = await fetch(server.url('/'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'Logs_20140328.DescribeLogGroups' },
    body: '{}',
  });
  const body = await r.text();
  assert.ok(r.status >= 400 && r.status < 500, `an unsigned DescribeLogGroups should be refused with a 4xx, got ${r.status}: ${body}`);
  assert.match(body, /MissingAuthenticationToken/, 'the refusal names the missing signature');
  const groups = await server.logs('DescribeLogGroups', { logGroupNamePrefix: '/team-' });
  assert.deepEqual(groups.logGroups.map((g) => g.logGroupName).sort(), ['/team-a/web', '/team-b/web']);
});

test('sign-in page: unauthenticated visits land on it; a wrong secret is refused there', async ({ page, context }) => {
  await seed();
  await open(page, server, '/console/logs');
  await expectSignInPage(page, '/console/logs', 'GET /console/logs without a session');
  assert.equal(await page.locator('#viewer').count(), 0, 'nobody is signed in: no #viewer in the header');
  await screenshot(page, 'login');

  await open(page, server, '/');
  await expectSignInPage(page, '/', 'GET / without a session');

  const status = await submitSignIn(page, READER.id, 'not-the-secret');
  assert.equal(status, 401, 'signing in with a wrong secret should answer HTTP 401');
  const err = await expectVisible(page, '#login-error', 'the sign-in error #login-error after a wrong secret');
  assert.match(await err.textContent(), /do not match/, '#login-error should say the key and secret do not match');
  assert.equal(new URL(page.url()).pathname, '/console/login', 'after a wrong secret the browser stays on the sign-in page');
  await expectVisible(page, 'form#login', 'the sign-in form, still there after a wrong secret');
  assert.equal(await page.locator('form#login input[name="key_id"]').inputValue(), READER.id, 'the key id typed is kept');
  assert.equal(await page.locator('form#login input[name="secret"]').inputValue(), '', 'the secret is not sent back');
  assert.equal(await sessionCookie(context, server), null, 'a refused sign-in sets no session cookie');

  // still signed out
  await open(page, server, '/console/tasks');
  await expectSignInPage(page, '/console/tasks', 'GET /console/tasks after a refused sign-in');
});

test('reader: back to the page asked for, reads every group, may not run a task', async ({ page }) => {
  const { stream, lines, task } = await seed();
  await open(page, server, '/console/logs');
  await expectSignInPage(page, '/console/logs', 'GET /console/logs without a session');
  await signIn(page, server, READER.id, READER.secret);
  assert.equal(new URL(page.url()).pathname, '/console/logs', 'signing in should go back to next=/console/logs');
  const viewer = await expectVisible(page, 'form.signout #viewer', 'the signed-in key #viewer in the header');
  assert.equal((await viewer.textContent()).trim(), READER.id, '#viewer should show the key id');

  await expectVisible(page, '#groups a.group-link', 'the group list #groups');
  const groups = await texts(page, '#groups a.group-link');
  for (const g of ['/team-a/web', '/team-b/web']) assert.ok(groups.includes(g), `the reader should see ${g} in #groups; sees ${JSON.stringify(groups)}`);

  // a group, its stream, the line
  await Promise.all([page.waitForURL((u) => u.pathname === '/console/logs/group'), page.locator('#groups a.group-link', { hasText: '/team-b/web' }).first().click()]);
  const link = await expectVisible(page, page.locator('#streams a.stream-link', { hasText: stream }), `the stream ${stream} in #streams`);
  await Promise.all([page.waitForURL((u) => u.pathname === '/console/logs/stream'), link.click()]);
  await expectVisible(page, '#events .event .msg', 'the stream\'s events');
  assert.deepEqual(await texts(page, '#events .event .msg'), [lines['/team-b/web']], 'the reader reads the stream\'s line');

  // the failed task's page reads; Run again is refused
  const before = (await server.listAllTasks()).length;
  await open(page, server, `/console/tasks/${task.id}`);
  await expectVisible(page, '#task', 'the failed task\'s page (#task)');
  const again = await expectVisible(page, 'form#run-again button', 'the run-again button');
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `/console/tasks/${task.id}/run-again`),
    again.click(),
  ]);
  await page.waitForLoadState('load');
  await expectNotAllowed(page, resp, ['ecs:RunTask', 'reader'], 'Run again as the read-only key');
  assert.equal(new URL(page.url()).pathname, `/console/tasks/${task.id}/run-again`, 'a refused run-again does not redirect to a task');
  const after = (await server.listAllTasks()).length;
  assert.equal(after, before, `a refused run-again should start no task: ListTasks had ${before} tasks before, ${after} after`);
});

test('team-a: only its own groups; other groups and tasks are not allowed', async ({ page }) => {
  const { stream, lines } = await seed();
  await signIn(page, server, TEAM_A.id, TEAM_A.secret, '/console/logs');
  assert.equal(new URL(page.url()).pathname, '/console/logs', 'signing in should go back to next=/console/logs');
  assert.equal((await (await expectVisible(page, '#viewer', '#viewer')).textContent()).trim(), TEAM_A.id, '#viewer should show team-a');
  await expectVisible(page, '#groups a.group-link', 'the group list #groups');
  const groups = await texts(page, '#groups a.group-link');
  assert.deepEqual(groups, ['/team-a/web'], 'team-a should see only /team-a/web in #groups');

  // its own stream reads
  await open(page, server, `/console/logs/stream?${q({ group: '/team-a/web', stream })}`);
  await expectVisible(page, '#events .event .msg', 'team-a\'s own stream');
  assert.deepEqual(await texts(page, '#events .event .msg'), [lines['/team-a/web']]);

  // another team's stream, opened directly
  const resp = await open(page, server, `/console/logs/stream?${q({ group: '/team-b/web', stream })}`, 403);
  await expectNotAllowed(page, resp, ['team-a', 'log-group:/team-b/web'], 'team-a opening a /team-b/web stream');
  assert.ok(!(await pageText(page, 5000)).includes(lines['/team-b/web']), 'the refused page must not show /team-b/web\'s line');

  // no ecs grant: no tasks
  const tasks = await open(page, server, '/console/tasks', 403);
  await expectNotAllowed(page, tasks, ['ecs:ListTasks'], 'team-a opening /console/tasks');
});

test('admin: run again works; sign out ends the session', async ({ page, context }) => {
  const { task } = await seed();
  await open(page, server, `/console/tasks/${task.id}`);
  await expectSignInPage(page, `/console/tasks/${task.id}`, 'the task page without a session');
  await signIn(page, server, ADMIN.id, ADMIN.secret);
  assert.equal(new URL(page.url()).pathname, `/console/tasks/${task.id}`, 'signing in should go back to the task page');
  await expectVisible(page, '#task', 'the failed task\'s page (#task)');

  const again = await expectVisible(page, 'form#run-again button', 'the run-again button');
  await Promise.all([
    page.waitForURL((u) => /^\/console\/tasks\/[^/]+$/.test(u.pathname) && u.pathname !== `/console/tasks/${task.id}`, { timeout: 15_000 }),
    again.click(),
  ]);
  await expectVisible(page, '#task', 'the new task\'s page (#task) after run-again');
  const newId = new URL(page.url()).pathname.split('/').pop();
  const started = await server.describeTask(newId);
  assert.equal(started.taskDefinitionArn, (await server.describeTask(task.arn)).taskDefinitionArn, 'the new task runs the same task definition');
  await server.waitTaskStopped(started.taskArn);

  // sign out
  const signout = await expectVisible(page, 'form.signout button', 'the sign-out button');
  await Promise.all([page.waitForURL((u) => u.pathname === '/console/login'), signout.click()]);
  await expectVisible(page, 'form#login', 'the sign-in form after signing out');
  assert.equal(await sessionCookie(context, server), null, 'signing out removes the session cookie');
  await open(page, server, '/console/logs');
  await expectSignInPage(page, '/console/logs', 'GET /console/logs after signing out');
});

test('live tail API: 401 without a session', async ({ page, context }) => {
  await seed();
  const api = `/console/api/tail?${q({ group: '/team-a/web', since: '0' })}`;
  // from Node, no cookie
  const r = await fetch(server.url(api));
  assert.equal(r.status, 401, `GET ${api} from Node without a cookie should answer 401, answered ${r.status}`);
  assert.match(r.headers.get('content-type') || '', /application\/json/, 'the 401 is JSON for the script');
  assert.match((await r.json()).error, /sign in/, 'the 401 says to sign in again');

  // from a page of the console, before and after signing in
  await open(page, server, '/console/login');
  const fromPage = () => page.evaluate(async (u) => {
    const resp = await fetch(u);
    return { status: resp.status, body: await resp.text() };
  }, api);
  const anon = await fromPage();
  assert.equal(anon.status, 401, `the page's fetch of ${api} without a session should answer 401; answered ${anon.status} ${anon.body}`);
  assert.equal(await sessionCookie(context, server), null);

  await signIn(page, server, ADMIN.id, ADMIN.secret);
  const signed = await fromPage();
  assert.equal(signed.status, 200, `with a session ${api} answers 200 (control); answered ${signed.status} ${signed.body}`);
  assert.ok(Array.isArray(JSON.parse(signed.body).events), `the tail answer has events: ${signed.body}`);
});

test('a stop form posted from another origin is refused; the task keeps running', async ({ page, context }) => {
  const family = unique('e2e-long');
  await server.registerTaskDefinition(family, 'exec sleep 30');
  const { arn, id } = await server.runTask(family);
  try {
    await eventually(async () => (await server.describeTask(arn)).lastStatus === 'RUNNING', { timeout: 15_000, message: `precondition: task ${id} should be RUNNING` });
    await signIn(page, server, ADMIN.id, ADMIN.secret, `/console/tasks/${id}`);
    await expectVisible(page, 'form#stop button', 'the stop button of the running task');
    const cookie = await sessionCookie(context, server);
    assert.ok(cookie, 'signed in as admin: the context should hold a lookout_session cookie');

    const post = (taskId, origin) => fetch(server.url(`/console/tasks/${taskId}/stop`), {
      method: 'POST', redirect: 'manual', body: '',
      headers: { Cookie: cookie, Origin: origin, 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    const evil = await post(id, 'http://evil.example');
    const body = await evil.text();
    assert.equal(evil.status, 403, `POST /console/tasks/${id}/stop with Origin http://evil.example should answer 403, answered ${evil.status}: ${body.slice(0, 300)}`);
    assert.match(body, /another site/, 'the refusal says the form came from another site');

    // The same cookie and a same-origin Origin pass the check (on a task that does not exist: 404).
    const control = await post('no-such-task', server.base);
    assert.equal(control.status, 404, `control: a same-origin POST with the same cookie reaches the task lookup (404), answered ${control.status}`);

    await sleep(500);
    const t = await server.describeTask(arn);
    assert.equal(t.lastStatus, 'RUNNING', `the task should still be RUNNING after the refused stop, is ${t.lastStatus}`);
    assert.equal(t.desiredStatus, 'RUNNING', `the task's desiredStatus should still be RUNNING, is ${t.desiredStatus}`);
  } finally {
    await server.ecs('StopTask', { task: arn, reason: 'e2e cleanup' }).catch(() => {});
  }
  await server.waitTaskStopped(arn, 15_000);
});
