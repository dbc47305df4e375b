// Harness of the console's end-to-end browser tests: starts a real `lookout serve`, seeds it through
// lookout's own AWS APIs (plain fetch; unsigned with --no-auth, SigV4-signed when the server is
// given credentials), and drives Debian's Chromium with playwright-core.
//
// Environment:
//   LOOKOUT_BIN          binary under test (default <repo>/target/release/lookout); never built here
//   LOOKOUT_CHROMIUM     browser executable (default /usr/bin/chromium)
//   LOOKOUT_SCREENSHOTS  directory for full-page screenshots of the main pages (none when unset);
//                        failure screenshots go there too, else to <tmp>/lookout-console-failures
//
// A test file calls `useConsole()` once at top level: it registers before/after hooks that start one
// server and one browser for the whole file, and returns `{ test, server, ... }` where `test(name, fn)`
// gives each test a fresh browser context and page and, when the test fails, adds to its error the
// page's URL, a failure screenshot, the page's visible text, its JavaScript errors and the tail of
// the server's output.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test as nodeTest, before, after } from 'node:test';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LOOKOUT_BIN = process.env.LOOKOUT_BIN || path.join(REPO, 'target', 'release', 'lookout');
export const CHROMIUM = process.env.LOOKOUT_CHROMIUM || '/usr/bin/chromium';
export const SCREENSHOTS = process.env.LOOKOUT_SCREENSHOTS || '';
const FAILURE_DIR = SCREENSHOTS || path.join(os.tmpdir(), 'lookout-console-failures');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A name unique to this run (valid as a log group, stream, rule or topic name). */
export function unique(prefix = 'e2e') {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A free TCP port on 127.0.0.1 (the OS picks it; tiny race with other processes is accepted). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Raised by the API helpers: `code` is the AWS error type (`__type`), `status` the HTTP status. */
export class AwsError extends Error {
  constructor(target, status, code, message) {
    super(`${target} failed: HTTP ${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.awsMessage = message;
  }
}

// ----- SigV4 ------------------------------------------------------------------------------------

const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

/** `20261123T103000Z` for a Date (SigV4's x-amz-date). */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * AWS Signature Version 4 of one request (node:crypto only). Signs `host`, `x-amz-date` and every
 * header of `headers` (names lower-cased, values trimmed and inner spaces squeezed); the payload
 * hash is the hex SHA-256 of `body`. `path` and `query` must already be canonical (here always `/`
 * and empty). Returns the headers to add: `{ 'X-Amz-Date', Authorization }`.
 */
export function signV4({
  method = 'POST', host, path: uri = '/', query = '', headers = {}, body = '',
  credentials, region = 'us-east-1', service, now = new Date(),
}) {
  const date = amzDate(now);
  const all = { host, 'x-amz-date': date };
  for (const [name, value] of Object.entries(headers)) all[name.toLowerCase()] = value;
  const names = Object.keys(all).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(all[n]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [method, uri, query, canonicalHeaders, signedHeaders, sha256hex(body)].join('\n');
  const scope = `${date.slice(0, 8)}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256hex(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${credentials.secret}`, date.slice(0, 8));
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const signature = crypto.createHmac('sha256', key).update(stringToSign).digest('hex');
  return {
    'X-Amz-Date': date,
    Authorization: `AWS4-HMAC-SHA256 Credential=${credentials.id}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

/** The SigV4 service of a JSON 1.1 `X-Amz-Target`. */
function serviceOfTarget(target) {
  const prefix = target.split('.')[0];
  const service = { Logs_20140328: 'logs', AmazonEC2ContainerServiceV20141113: 'ecs', AWSEvents: 'events' }[prefix];
  if (!service) throw new Error(`no SigV4 service known for X-Amz-Target ${target}`);
  return service;
}

// ----- the server -------------------------------------------------------------------------------

/**
 * One `lookout serve --runtime process` on a free port with its own data directory.
 *
 * Options:
 *   extraArgs    more `lookout serve` arguments
 *   credentials  `{ id, secret }`: every request of the API helpers is SigV4-signed with this key
 *                (region us-east-1; service from the X-Amz-Target, `sns` for the Query form posts)
 *   auth         whether lookout checks signatures and puts the console behind a sign-in; false
 *                starts it with `--no-auth`. Default: true exactly when `credentials` are given
 *   config       text of a lookout.toml, written into the server's temp dir and passed as --config
 */
export class LookoutServer {
  constructor({ extraArgs = [], credentials = null, auth = Boolean(credentials), config = null } = {}) {
    this.extraArgs = extraArgs;
    this.credentials = credentials;
    this.auth = auth;
    this.config = config;
    this.proc = null;
    this.exited = null;
  }

  async start(timeoutMs = 30_000) {
    if (!fs.existsSync(LOOKOUT_BIN)) {
      throw new Error(`lookout binary not found at ${LOOKOUT_BIN} (build it with cargo build --release, or set LOOKOUT_BIN)`);
    }
    this.dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'lookout-console-'));
    this.dataDir = path.join(this.dir, 'data');
    this.logPath = path.join(this.dir, 'server.log');
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    const out = fs.openSync(this.logPath, 'a');
    // Without `auth` (and so without credentials) the helpers send unsigned requests: --no-auth.
    const auth = this.auth ? [] : ['--no-auth'];
    const config = [];
    if (this.config !== null) {
      this.configPath = path.join(this.dir, 'lookout.toml');
      await fsp.writeFile(this.configPath, this.config);
      config.push('--config', this.configPath);
    }
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir,
      '--runtime', 'process', ...auth, ...config, ...this.extraArgs];
    // The caller's LOOKOUT_NO_AUTH / LOOKOUT_ACCESS_KEYS / LOOKOUT_CONFIG would override what the
    // test asked for (auth on or off, its keys, its lookout.toml).
    const env = { ...process.env, RUST_BACKTRACE: '1' };
    delete env.LOOKOUT_NO_AUTH;
    delete env.LOOKOUT_ACCESS_KEYS;
    delete env.LOOKOUT_CONFIG;
    // cwd is the temp dir so that no ./lookout.toml of the caller is picked up; `detached` gives the
    // server its own process group, so stop() also ends task processes it may have left running.
    this.proc = spawn(LOOKOUT_BIN, args, {
      cwd: this.dir, stdio: ['ignore', out, out], detached: true, env,
    });
    fs.closeSync(out);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    let exitInfo = null;
    this.exited.then((info) => { exitInfo = info; });

    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (exitInfo) {
        throw new Error(`lookout exited (${JSON.stringify(exitInfo)}) before /ready answered; its output:\n${this.output()}`);
      }
      try {
        const r = await fetch(`${this.base}/ready`, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) return this;
        last = `HTTP ${r.status}`;
      } catch (e) {
        last = String(e.cause?.code || e.message);
      }
      await sleep(100);
    }
    await this.stop();
    throw new Error(`lookout not ready on ${this.base}/ready after ${timeoutMs} ms (last: ${last}); its output:\n${this.output()}`);
  }

  /** The server's output (stdout + stderr), its last `limit` characters. */
  output(limit = 20_000) {
    try {
      const text = fs.readFileSync(this.logPath, 'utf8');
      return text.length > limit ? `…${text.slice(-limit)}` : text;
    } catch {
      return '<no output>';
    }
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      // Task processes live in process groups of their own: stop them through the API first.
      await this.stopAllTasks().catch(() => {});
      try { process.kill(-this.proc.pid, 'SIGTERM'); } catch { /* already gone */ }
      let timer;
      const done = await Promise.race([this.exited, new Promise((r) => { timer = setTimeout(r, 10_000, null); })]);
      clearTimeout(timer);
      if (!done) {
        try { process.kill(-this.proc.pid, 'SIGKILL'); } catch { /* already gone */ }
        await this.exited;
      }
    }
    if (this.dir) {
      await fsp.rm(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 })
        .catch((e) => console.error(`# could not remove ${this.dir}: ${e.message}`));
    }
  }

  url(pathAndQuery) {
    return this.base + pathAndQuery;
  }

  /** `headers` plus, when the server was given credentials, the SigV4 headers for POST / `body`. */
  signed(service, headers, body) {
    if (!this.credentials) return headers;
    const host = new URL(this.base).host; // what fetch sends as Host
    return { ...headers, ...signV4({ host, headers, body, credentials: this.credentials, service }) };
  }

  // ----- AWS JSON protocol (CloudWatch Logs, ECS, EventBridge) ---------------------------------

  /** POST / with `X-Amz-Target: target`; returns the parsed JSON, throws AwsError on 4xx/5xx. */
  async awsJson(target, body) {
    const payload = JSON.stringify(body);
    const headers = { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': target };
    const r = await fetch(`${this.base}/`, {
      method: 'POST', headers: this.signed(serviceOfTarget(target), headers, payload), body: payload,
    });
    const text = await r.text();
    let json = {};
    try { json = text ? JSON.parse(text) : {}; } catch { /* not JSON */ }
    if (!r.ok) {
      throw new AwsError(target, r.status, json.__type || 'unknown', json.message || json.Message || text.slice(0, 500));
    }
    return json;
  }

  logs(op, body) { return this.awsJson(`Logs_20140328.${op}`, body); }
  ecs(op, body) { return this.awsJson(`AmazonEC2ContainerServiceV20141113.${op}`, body); }
  events(op, body) { return this.awsJson(`AWSEvents.${op}`, body); }

  async createLogGroup(logGroupName) {
    await this.logs('CreateLogGroup', { logGroupName });
  }

  async createLogStream(logGroupName, logStreamName) {
    await this.logs('CreateLogStream', { logGroupName, logStreamName });
  }

  /** Writes `events` (strings, or {timestamp, message}) to a stream; strings get `Date.now()`. */
  async putLogEvents(logGroupName, logStreamName, events) {
    const now = Date.now();
    const logEvents = events.map((e) => (typeof e === 'string' ? { timestamp: now, message: e } : e))
      .sort((a, b) => a.timestamp - b.timestamp);
    return this.logs('PutLogEvents', { logGroupName, logStreamName, logEvents });
  }

  /** Creates the group (if needed) and the stream, then writes the events. */
  async seedStream(group, stream, events) {
    try { await this.createLogGroup(group); } catch (e) { if (e.code !== 'ResourceAlreadyExistsException') throw e; }
    await this.createLogStream(group, stream);
    if (events.length) await this.putLogEvents(group, stream, events);
  }

  /** Registers a task definition whose single container `app` runs `script` under sh -c. */
  async registerTaskDefinition(family, script, logGroup = '/ecs/e2e') {
    return this.ecs('RegisterTaskDefinition', {
      family,
      containerDefinitions: [{
        name: 'app', image: 'busybox', essential: true, command: ['sh', '-c', script],
        logConfiguration: {
          logDriver: 'awslogs',
          options: {
            'awslogs-group': logGroup, 'awslogs-region': 'us-east-1',
            'awslogs-stream-prefix': 'ecs', 'awslogs-create-group': 'true',
          },
        },
      }],
    });
  }

  /** Runs one task of `family`; returns { arn, id }. */
  async runTask(family) {
    const r = await this.ecs('RunTask', { taskDefinition: family, count: 1 });
    if (!r.tasks?.length) throw new Error(`RunTask ${family} started no task: ${JSON.stringify(r)}`);
    const arn = r.tasks[0].taskArn;
    return { arn, id: arn.split('/').pop() };
  }

  async describeTask(arn) {
    const r = await this.ecs('DescribeTasks', { tasks: [arn] });
    if (!r.tasks?.length) throw new Error(`DescribeTasks ${arn}: no such task (${JSON.stringify(r.failures)})`);
    return r.tasks[0];
  }

  /** Polls DescribeTasks until lastStatus is STOPPED; returns the task. */
  async waitTaskStopped(arn, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    let task;
    while (Date.now() < deadline) {
      task = await this.describeTask(arn);
      if (task.lastStatus === 'STOPPED') return task;
      await sleep(200);
    }
    throw new Error(`task ${arn} not STOPPED after ${timeoutMs} ms (lastStatus ${task?.lastStatus})`);
  }

  /** The ARNs of every task lookout knows (any status), all pages. */
  async listAllTasks() {
    const arns = [];
    let nextToken;
    do {
      const r = await this.ecs('ListTasks', nextToken ? { nextToken } : {});
      arns.push(...(r.taskArns || []));
      nextToken = r.nextToken;
    } while (nextToken);
    return arns;
  }

  /** Stops every task still running (best effort, waits up to 10 s for them to stop). */
  async stopAllTasks() {
    const { taskArns = [] } = await this.ecs('ListTasks', { desiredStatus: 'RUNNING' });
    for (const task of taskArns) await this.ecs('StopTask', { task, reason: 'e2e harness cleanup' }).catch(() => {});
    await Promise.all(taskArns.map((arn) => this.waitTaskStopped(arn, 10_000).catch(() => {})));
  }

  /** Polls GetLogEvents until every string of `needles` is in some message of the stream. */
  async waitLogLines(group, stream, needles, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    let messages = [];
    while (Date.now() < deadline) {
      try {
        const r = await this.logs('GetLogEvents', { logGroupName: group, logStreamName: stream, startFromHead: true });
        messages = r.events.map((e) => e.message);
        if (needles.every((n) => messages.some((m) => m.includes(n)))) return messages;
      } catch (e) {
        if (e.code !== 'ResourceNotFoundException') throw e;
      }
      await sleep(200);
    }
    throw new Error(`stream ${group} / ${stream} lacks ${JSON.stringify(needles)} after ${timeoutMs} ms; it has ${JSON.stringify(messages)}`);
  }

  // ----- SNS (Query protocol) ------------------------------------------------------------------

  /** POST / form-encoded; returns the XML text, throws with the error's Message on 4xx/5xx. */
  async snsQuery(params) {
    const body = new URLSearchParams({ Version: '2010-03-31', ...params }).toString();
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const r = await fetch(`${this.base}/`, { method: 'POST', headers: this.signed('sns', headers, body), body });
    const text = await r.text();
    if (!r.ok) {
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] || 'unknown';
      const msg = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] || text.slice(0, 500);
      throw new AwsError(`SNS ${params.Action}`, r.status, code, msg);
    }
    return text;
  }

  async createTopic(name) {
    const xml = await this.snsQuery({ Action: 'CreateTopic', Name: name });
    const arn = /<TopicArn>([^<]*)<\/TopicArn>/.exec(xml)?.[1];
    if (!arn) throw new Error(`CreateTopic ${name}: no TopicArn in ${xml}`);
    return arn;
  }

  async subscribe(topicArn, protocol, endpoint) {
    const xml = await this.snsQuery({ Action: 'Subscribe', TopicArn: topicArn, Protocol: protocol, Endpoint: endpoint });
    return /<SubscriptionArn>([^<]*)<\/SubscriptionArn>/.exec(xml)?.[1];
  }
}

// ----- the browser ------------------------------------------------------------------------------

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Debian's Chromium, headless; playwright's launch() gives it a fresh temporary profile. */
export async function launchBrowser() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not installed (run scripts/setup-browser.sh): ${e.message}`);
  }
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM} (run scripts/setup-browser.sh, or set LOOKOUT_CHROMIUM)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** Saves a full-page screenshot as <LOOKOUT_SCREENSHOTS>/<name>.png when that variable is set. */
export async function screenshot(page, name) {
  if (!SCREENSHOTS) return null;
  await fsp.mkdir(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// ----- assertions that explain themselves -------------------------------------------------------

/** The visible text of the page (whitespace squeezed, cut to `limit`), for error messages. */
export async function pageText(page, limit = 1500) {
  try {
    const text = (await page.evaluate(() => document.body ? document.body.innerText : document.documentElement.outerHTML))
      .replace(/\s+/g, ' ').trim();
    return text.length > limit ? `${text.slice(0, limit)}…` : text;
  } catch (e) {
    try {
      const html = await page.content();
      return html.replace(/\s+/g, ' ').slice(0, limit);
    } catch {
      return `<unreadable page: ${e.message}>`;
    }
  }
}

/**
 * Waits until `selector` (a CSS selector or a Locator) is visible, or throws an error naming `what`,
 * the selector, the URL and the page's text.
 */
export async function expectVisible(page, selector, what, timeout = 5000) {
  const loc = typeof selector === 'string' ? page.locator(selector).first() : selector.first();
  try {
    await loc.waitFor({ state: 'visible', timeout });
    return loc;
  } catch {
    const count = await loc.count().catch(() => '?');
    throw new Error(`expected ${what} — ${describe(selector)} visible within ${timeout} ms on ${page.url()}, `
      + `but ${count === 0 ? 'no element matches' : `${count} element(s) match and none is visible`}. `
      + `The page shows: ${await pageText(page)}`);
  }
}

/** Waits until `selector` exists in the DOM (visible or not), else throws like expectVisible. */
export async function expectAttached(page, selector, what, timeout = 5000) {
  const loc = typeof selector === 'string' ? page.locator(selector).first() : selector.first();
  try {
    await loc.waitFor({ state: 'attached', timeout });
    return loc;
  } catch {
    throw new Error(`expected ${what} — ${describe(selector)} in the page within ${timeout} ms on ${page.url()}, `
      + `but no element matches. The page shows: ${await pageText(page)}`);
  }
}

/** Polls `fn` (async, returns truthy when done) until it passes; throws `message()` otherwise. */
export async function eventually(fn, { timeout = 5000, interval = 100, message }) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? ` (last error: ${last.message})` : '';
      throw new Error(`${typeof message === 'function' ? await message() : message}${detail}`);
    }
    await sleep(interval);
  }
}

/** Text contents of every element matching `selector`, trimmed. */
export async function texts(page, selector) {
  return page.locator(selector).evaluateAll((els) => els.map((e) => e.textContent.trim()));
}

/** Loads `pathAndQuery`, failing with the status and the page's text when it is not `status`. */
export async function open(page, server, pathAndQuery, status = 200) {
  let resp;
  try {
    resp = await page.goto(server.url(pathAndQuery), { waitUntil: 'load' });
  } catch (e) {
    // e.g. "Download is starting" when the answer is not a page: say what the server answered.
    let answer;
    try {
      const r = await fetch(server.url(pathAndQuery));
      answer = `HTTP ${r.status} ${r.headers.get('content-type')}: ${(await r.text()).slice(0, 300)}`;
    } catch (fe) {
      answer = `no answer (${fe.message})`;
    }
    throw new Error(`GET ${pathAndQuery} did not load as a page (${e.message.split('\n')[0]}); the server answers ${answer}`);
  }
  const got = resp ? resp.status() : 'no response';
  if (got !== status) {
    throw new Error(`GET ${pathAndQuery} answered HTTP ${got}, expected ${status}. The page shows: ${await pageText(page)}`);
  }
  return resp;
}

// ----- the console's sign-in -------------------------------------------------------------------

/**
 * On the sign-in page the browser shows, fills in `form#login` (key_id, secret) and submits it;
 * returns the HTTP status of the POST (303 when accepted, 401 when refused).
 */
export async function submitSignIn(page, keyId, secret) {
  await expectVisible(page, 'form#login', 'the sign-in form form#login');
  await page.locator('form#login input[name="key_id"]').fill(keyId);
  await page.locator('form#login input[name="secret"]').fill(secret);
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/console/login'),
    page.locator('form#login button[type="submit"]').click(),
  ]);
  return resp.status();
}

/**
 * Signs in as `keyId`: on the sign-in page the browser shows, else at /console/login?next=`next`;
 * waits until the page it goes back to has loaded.
 */
export async function signIn(page, server, keyId, secret, next = '/console/') {
  if (!page.url().startsWith(server.url('/console/login'))) {
    await open(page, server, `/console/login?${new URLSearchParams({ next })}`);
  }
  const status = await submitSignIn(page, keyId, secret);
  if (status !== 303) {
    throw new Error(`signing in as ${keyId} answered HTTP ${status}, expected 303. The page shows: ${await pageText(page)}`);
  }
  await page.waitForURL((u) => u.pathname !== '/console/login');
}

/** The console's session cookie of a browser context, as a `Cookie` header value (or null). */
export async function sessionCookie(context, server) {
  const c = (await context.cookies(server.base)).find((k) => k.name === 'lookout_session');
  return c ? `${c.name}=${c.value}` : null;
}

/** A CSS attribute selector `[attr="value"]` with value escaped. */
export function attr(name, value) {
  return `[${name}="${String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"]`;
}

/** The `.event` element whose id is `e-<eventId>` (ids may hold characters CSS #ids don't allow). */
export function eventSelector(eventId) {
  return attr('id', `e-${eventId}`);
}

function describe(selector) {
  return typeof selector === 'string' ? `\`${selector}\`` : String(selector);
}

function slug(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

// ----- the per-file fixture ---------------------------------------------------------------------

/**
 * One server and one browser for the test file. Returns `{ server, test }`; `test(name, fn, opts)`
 * runs `fn({ t, page, context, newContext })` with a fresh context/page (closed afterwards);
 * `opts.contextOptions` go to that context (e.g. `{ timezoneId: 'UTC' }`), other opts to node:test.
 * `newContext(options)` opens further contexts (e.g. without JavaScript), closed with the test.
 * `serverOptions` are LookoutServer's (`extraArgs`, `credentials`, `auth`, `config`).
 */
export function useConsole(serverOptions = {}) {
  const server = new LookoutServer(serverOptions);
  const state = { browser: null };

  before(async () => {
    await server.start();
    state.browser = await launchBrowser();
  }, { timeout: 90_000 });

  after(async () => {
    if (state.browser) await state.browser.close().catch(() => {});
    await server.stop();
  }, { timeout: 30_000 });

  function test(name, fn, { contextOptions = {}, ...opts } = {}) {
    return nodeTest(name, { timeout: 120_000, ...opts }, async (t) => {
      const contexts = [];
      const pageErrors = [];
      const newContext = async (options = {}) => {
        const ctx = await state.browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
        ctx.setDefaultTimeout(10_000);
        ctx.on('page', (p) => p.on('pageerror', (err) => pageErrors.push(`${p.url()}: ${err.message}`)));
        contexts.push(ctx);
        return ctx;
      };
      const context = await newContext(contextOptions);
      const page = await context.newPage();
      try {
        await fn({ t, page, context, newContext, server });
      } catch (err) {
        err.message += await failureReport(name, contexts, pageErrors, server);
        throw err;
      } finally {
        for (const ctx of contexts) await ctx.close().catch(() => {});
      }
    });
  }

  return { server, test };
}

/** Screenshot + URL + JS errors + server output of a failed test, appended to its error message. */
async function failureReport(name, contexts, pageErrors, server) {
  let report = '\n--- diagnostics';
  const pages = contexts.flatMap((c) => c.pages());
  for (const [i, p] of pages.entries()) {
    let shot = '';
    try {
      await fsp.mkdir(FAILURE_DIR, { recursive: true });
      shot = path.join(FAILURE_DIR, `failure-${slug(name)}${i ? `-${i}` : ''}.png`);
      await p.screenshot({ path: shot, fullPage: true, timeout: 5000 });
    } catch (e) {
      shot = `(no screenshot: ${e.message.split('\n')[0]})`;
    }
    report += `\npage ${i}: ${p.url()}\n  screenshot: ${shot}`;
  }
  if (pageErrors.length) report += `\nJavaScript errors in the page:\n  ${pageErrors.join('\n  ')}`;
  report += `\nserver output (tail):\n${server.output(4000)}\n---`;
  return report;
}
