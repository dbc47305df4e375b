// Console: reading logs — navigation from the overview to a stream, permalinks, stream order, JSON
// messages, time ranges, paging, search (valid, empty, invalid patterns) and HTML escaping.
import assert from 'node:assert/strict';
import {
  useConsole, unique, open, expectVisible, expectAttached, texts, screenshot, eventSelector, pageText, sleep,
} from './harness.mjs';

const { test, server } = useConsole();
const q = (params) => new URLSearchParams(params).toString();

test('navigate: overview → Logs → group → stream → permalink', async ({ page }) => {
  // Two groups, so that the click must pick the right one; 30 lines, one second apart, newest now.
  const group = `/e2e/nav/${unique('app')}`;
  const stream = unique('web');
  const now = Date.now();
  const lines = Array.from({ length: 30 }, (_, i) => ({ timestamp: now - (30 - i) * 1000, message: `nav line ${String(i).padStart(2, '0')}` }));
  await server.seedStream(group, stream, lines);
  await server.seedStream(`/e2e/nav/${unique('other')}`, 'other', ['not this one']);

  await open(page, server, '/');
  await expectVisible(page, '#overview', 'the overview (#overview) at /');
  const logsNav = await expectVisible(page, 'nav a[href="/console/logs"]', 'the Logs link in the nav');
  await Promise.all([page.waitForURL((u) => u.pathname === '/console/logs'), logsNav.click()]);

  const groupLink = await expectVisible(page, page.locator('#groups a.group-link', { hasText: group }).filter({ hasText: new RegExp(`^\\s*${escapeRe(group)}\\s*$`) }),
    `a link to group ${group} in #groups`);
  await Promise.all([page.waitForURL((u) => u.pathname === '/console/logs/group'), groupLink.click()]);
  assert.equal(new URL(page.url()).searchParams.get('group'), group, `the group page's URL should carry group=${group}: ${page.url()}`);

  const streamLink = await expectVisible(page, page.locator('#streams a.stream-link', { hasText: stream }), `a link to stream ${stream} in #streams`);
  await Promise.all([page.waitForURL((u) => u.pathname === '/console/logs/stream'), streamLink.click()]);

  await expectVisible(page, '#events .event .msg', 'events (#events .event .msg) on the stream page');
  const shown = await texts(page, '#events .event .msg');
  const missing = lines.map((l) => l.message).filter((m) => !shown.includes(m));
  assert.deepEqual(missing, [], `the stream page lacks seeded lines; it shows ${JSON.stringify(shown)}`);
  await screenshot(page, 'log-stream');

  // Permalink of a line in the middle: its href names the event, and following it shows the event.
  const ev = page.locator('#events .event', { hasText: 'nav line 15' }).first();
  const elementId = await ev.getAttribute('id');
  assert.match(elementId || '', /^e-./, `the .event of "nav line 15" should have id="e-<eventId>", has id=${JSON.stringify(elementId)}`);
  const eventId = elementId.slice(2);
  const permalink = ev.locator('a.permalink');
  assert.equal(await permalink.count(), 1, 'the event should have exactly one a.permalink');
  const href = await permalink.getAttribute('href');
  assert.ok(href.includes(`#e-${eventId}`) || href.includes(`#${encodeURIComponent(`e-${eventId}`)}`),
    `a.permalink href should contain #e-${eventId}, is ${href}`);
  await Promise.all([page.waitForURL((u) => decodeURIComponent(u.hash) === `#e-${eventId}`), permalink.click()]);
  const target = await expectVisible(page, eventSelector(eventId), `the linked event #e-${eventId} after clicking its permalink`);
  assert.match(await target.locator('.msg').textContent(), /nav line 15/);

  // The same link opened cold (as someone it was sent to would) shows the event, scrolled into view.
  const cold = await page.context().newPage();
  const resp = await cold.goto(new URL(href, page.url()).toString());
  assert.equal(resp.status(), 200, `opening the permalink ${href} answered ${resp.status()}`);
  const coldTarget = await expectVisible(cold, eventSelector(eventId), `the linked event #e-${eventId} when the permalink is opened in a new page`);
  assert.ok(await coldTarget.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight;
  }), `#e-${eventId} should be scrolled into the viewport when its permalink is opened`);
});

test('group list: links every group and filters by prefix', async ({ page }) => {
  const prefix = `/e2e/${unique('filter')}`;
  const a = `${prefix}/alpha`;
  const b = `${prefix}/beta`;
  const other = `/e2e/${unique('elsewhere')}`;
  for (const g of [a, b, other]) await server.createLogGroup(g);

  await open(page, server, '/console/logs');
  await expectVisible(page, '#groups', 'the group table #groups');
  await screenshot(page, 'log-groups');
  for (const g of [a, b, other]) {
    const link = page.locator('#groups a.group-link', { hasText: g });
    await expectVisible(page, link, `a.group-link for ${g}`);
    const href = await link.first().getAttribute('href');
    const u = new URL(href, server.base);
    assert.equal(u.pathname, '/console/logs/group', `group link href: ${href}`);
    assert.equal(u.searchParams.get('group'), g, `group link href should carry the URL-encoded name: ${href}`);
  }

  // The filter form: type the prefix, submit, only the two groups under it remain.
  const input = await expectVisible(page, 'form#group-filter input[name=prefix]', 'the prefix input of form#group-filter');
  await input.fill(prefix);
  await Promise.all([page.waitForURL((u) => u.searchParams.get('prefix') === prefix), input.press('Enter')]);
  const listed = await texts(page, '#groups a.group-link');
  assert.deepEqual(listed.sort(), [a, b], `with prefix=${prefix} the list should be exactly its two groups, is ${JSON.stringify(listed)}`);
});

test('group page: streams sorted by last event time, newest first', async ({ page }) => {
  // Names and creation order are alphabetical; last-event order is bravo, charlie, alpha.
  const group = `/e2e/${unique('order')}`;
  const now = Date.now();
  await server.seedStream(group, 'alpha', [{ timestamp: now - 10 * 60_000, message: 'alpha last' }]);
  await server.seedStream(group, 'bravo', [{ timestamp: now - 60_000, message: 'bravo last' }]);
  await server.seedStream(group, 'charlie', [{ timestamp: now - 5 * 60_000, message: 'charlie last' }]);

  await open(page, server, `/console/logs/group?${q({ group })}`);
  await expectVisible(page, '#streams a.stream-link', 'stream links in #streams');
  const order = await texts(page, '#streams a.stream-link');
  assert.deepEqual(order, ['bravo', 'charlie', 'alpha'], `streams should be newest first; the page lists ${JSON.stringify(order)}`);
  await expectAttached(page, 'a#tail-link', 'a#tail-link (live tail of the group)');
  const tail = new URL(await page.locator('a#tail-link').getAttribute('href'), server.base);
  assert.equal(tail.pathname, '/console/logs/tail', `a#tail-link href: ${tail}`);
  assert.equal(tail.searchParams.get('group'), group, `a#tail-link should name the group: ${tail}`);
});

test('stream page: a JSON message expands to pretty-printed JSON', async ({ page }) => {
  const group = `/e2e/${unique('json')}`;
  const doc = { level: 'info', user: { id: 42, name: 'ada' }, msg: 'hello json' };
  await server.seedStream(group, 's', [JSON.stringify(doc), 'plain text line']);

  await open(page, server, `/console/logs/stream?${q({ group, stream: 's' })}`);
  const ev = page.locator('#events .event', { hasText: 'hello json' });
  await expectVisible(page, ev, 'the .event of the JSON message');
  const details = ev.locator('details.json');
  assert.equal(await details.count(), 1, 'the JSON message should have one details.json element');
  const plain = page.locator('#events .event', { hasText: 'plain text line' }).locator('details.json');
  assert.equal(await plain.count(), 0, 'a plain-text message should have no details.json');

  await details.locator('summary').first().click();
  const pre = await expectVisible(page, ev.locator('details.json pre'), 'the pre of details.json after clicking its summary');
  const text = await pre.textContent();
  assert.ok(text.includes('\n'), `details.json pre should be pretty-printed (multi-line), is ${JSON.stringify(text)}`);
  assert.deepEqual(JSON.parse(text), doc, 'details.json pre should hold the same JSON');
});

test('stream page: time range (relative, epoch ms, absolute local) and the time zone', async ({ page }) => {
  const group = `/e2e/${unique('range')}`;
  const now = Date.now();
  const old = now - 2 * 3600_000; // two hours ago
  await server.seedStream(group, 's', [
    { timestamp: old, message: 'two hours old' },
    { timestamp: now - 60_000, message: 'one minute old' },
  ]);

  await open(page, server, `/console/logs/stream?${q({ group, stream: 's', start: '1h' })}`);
  await expectVisible(page, '#events .event .msg', 'events for start=1h');
  let shown = await texts(page, '#events .event .msg');
  assert.deepEqual(shown, ['one minute old'], `start=1h should show only the recent line, shows ${JSON.stringify(shown)}`);
  const tz = await expectVisible(page, '#tz', 'the time zone (#tz)');
  assert.notEqual((await tz.textContent()).trim(), '', '#tz should name the time zone');
  assert.equal(await page.locator('input[name=start]').first().inputValue(), '1h', 'the start input should keep "1h"');

  await open(page, server, `/console/logs/stream?${q({ group, stream: 's', start: String(old - 60_000), end: String(old + 60_000) })}`);
  await expectVisible(page, '#events .event .msg', 'events for an epoch-ms range around the old line');
  shown = await texts(page, '#events .event .msg');
  assert.deepEqual(shown, ['two hours old'], `the epoch-ms range should show only the old line, shows ${JSON.stringify(shown)}`);

  // Absolute local times (minutes): this browser context runs in UTC (see timezoneId below).
  const minute = (ms) => new Date(ms).toISOString().slice(0, 16); // 2026-11-23T10:00
  const abs = { group, stream: 's', start: minute(old - 60_000), end: minute(old + 120_000) };
  await open(page, server, `/console/logs/stream?${q(abs)}`);
  await expectVisible(page, '#events .event .msg', `events for start=${abs.start} end=${abs.end} (local, UTC)`);
  shown = await texts(page, '#events .event .msg');
  assert.deepEqual(shown, ['two hours old'], `start=${abs.start}&end=${abs.end} should show only the old line, shows ${JSON.stringify(shown)}`);

  // The stream page links to the live tail of this stream.
  await expectAttached(page, 'a#tail-link', 'a#tail-link on the stream page');
  const tail = new URL(await page.locator('a#tail-link').first().getAttribute('href'), server.base);
  assert.equal(tail.pathname, '/console/logs/tail', `a#tail-link href: ${tail}`);
  assert.deepEqual([tail.searchParams.get('group'), tail.searchParams.get('stream')], [group, 's'], `a#tail-link should name the group and stream: ${tail}`);
}, { contextOptions: { timezoneId: 'UTC' } });

test('stream page: absolute times typed in the form are the browser\'s local time (UTC+05:30)', async ({ page }) => {
  const group = `/e2e/${unique('tz')}`;
  const now = Date.now();
  const old = now - 2 * 3600_000;
  await server.seedStream(group, 's', [
    { timestamp: old, message: 'two hours old' },
    { timestamp: now - 60_000, message: 'one minute old' },
  ]);
  await open(page, server, `/console/logs/stream?${q({ group, stream: 's' })}`);
  const tz = await expectVisible(page, '#tz', 'the time zone (#tz)');
  assert.match(await tz.textContent(), /Kolkata|Calcutta|\+0?5:?30/, '#tz should name the browser\'s zone (Asia/Kolkata, UTC+05:30)');

  // Type the old line's minute in Kolkata time (UTC+05:30) and submit the form.
  const kolkata = (ms) => new Date(ms + 5.5 * 3600_000).toISOString().slice(0, 16);
  await page.locator('input[name=start]').first().fill(kolkata(old - 60_000));
  await page.locator('input[name=end]').first().fill(kolkata(old + 120_000));
  const before = page.url();
  await Promise.all([page.waitForURL((u) => u.toString() !== before), page.locator('input[name=end]').first().press('Enter')]);
  await expectVisible(page, '#events .event .msg', 'events for the typed local range');
  const shown = await texts(page, '#events .event .msg');
  assert.deepEqual(shown, ['two hours old'], `the typed range ${kolkata(old - 60_000)} … ${kolkata(old + 120_000)} (UTC+05:30) should show only the old line, shows ${JSON.stringify(shown)} (${page.url()})`);
}, { contextOptions: { timezoneId: 'Asia/Kolkata' } });

test('stream page: paging links reach every event of a large stream', async ({ page }) => {
  const group = `/e2e/${unique('paging')}`;
  const total = 1200;
  const now = Date.now();
  const lines = Array.from({ length: total }, (_, i) => ({ timestamp: now - (total - i) * 50, message: `page line ${String(i).padStart(4, '0')}` }));
  await server.seedStream(group, 's', lines);

  await open(page, server, `/console/logs/stream?${q({ group, stream: 's' })}`);
  await expectVisible(page, '#events .event .msg', 'events of the large stream');
  const seen = new Set(await texts(page, '#events .event .msg'));
  if (seen.size === total) return; // everything on one page: no paging needed
  // Follow whichever direction exists from the first page until there is no more.
  const dir = (await page.locator('a#older').count()) ? 'a#older' : 'a#newer';
  assert.ok(await page.locator(dir).count(), `the page shows ${seen.size} of ${total} events but has neither a#older nor a#newer`);
  for (let hops = 0; hops < 60 && (await page.locator(dir).count()); hops++) {
    const before = page.url();
    await Promise.all([page.waitForURL((u) => u.toString() !== before), page.locator(dir).first().click()]);
    const got = await texts(page, '#events .event .msg');
    const fresh = got.filter((m) => !seen.has(m));
    assert.ok(got.length > 0, `${dir} was offered after ${seen.size} of ${total} events, but it leads to a page with no events `
      + `(${page.url()}): the link should be absent when there is nothing more`);
    assert.ok(fresh.length > 0, `following ${dir} (${page.url()}) showed no new events, only ${got.length} already seen`);
    for (const m of got) seen.add(m);
  }
  assert.equal(seen.size, total, `following ${dir} reached ${seen.size} of ${total} events`);
});

test('stream page: scrolling to the top loads older events in place (infinite scroll)', async ({ page }) => {
  const group = `/e2e/${unique('scroll')}`;
  const total = 250;
  const now = Date.now();
  const lines = Array.from({ length: total }, (_, i) => ({ timestamp: now - (total - i) * 50, message: `scroll line ${String(i).padStart(4, '0')}` }));
  await server.seedStream(group, 's', lines);
  await page.setViewportSize({ width: 1200, height: 600 });
  await open(page, server, `/console/logs/stream?${q({ group, stream: 's' })}`);
  await expectVisible(page, '#events .event .msg', 'events of the stream');
  const first = await texts(page, '#events .event .msg');
  assert.equal(first.length, 100, `the newest page should hold 100 events, not ${first.length}`);
  assert.equal(first.at(-1), 'scroll line 0249', 'the newest page ends with the newest event');
  const url = page.url();
  // The newest page opens scrolled to its bottom; scroll up to the top, step by step, like a reader.
  for (let i = 0; i < 40 && (await page.locator('#events .event').count()) < total; i++) {
    await page.mouse.wheel(0, -2500);
    await sleep(150);
  }
  const all = await texts(page, '#events .event .msg');
  assert.equal(page.url(), url, 'older events should load in place, without navigating');
  assert.equal(all.length, total, `scrolling up should have loaded all ${total} events in place; the page has ${all.length}`);
  assert.deepEqual(all, lines.map((l) => l.message), 'events stay in order, none twice');
  assert.equal(await page.locator('a#older').count(), 0, 'at the start of the stream there is no older link left');
});

test('search: valid pattern, no results, and an invalid pattern', async ({ page }) => {
  const group = `/e2e/${unique('search')}`;
  const now = Date.now();
  await server.seedStream(group, 'app', [
    { timestamp: now - 5000, message: 'ERROR disk full on /dev/sda' },
    { timestamp: now - 4000, message: 'INFO request ok' },
    { timestamp: now - 3000, message: 'ERROR timeout talking to db' },
    { timestamp: now - 2000, message: 'WARN slow response' },
    { timestamp: now - 1000, message: 'info: an error in lower case' },
  ]);

  // Through the search form of the group page.
  await open(page, server, `/console/logs/group?${q({ group })}`);
  const form = await expectVisible(page, 'form#search', 'the search form on the group page');
  assert.equal(await form.locator('input[name=group]').inputValue(), group, 'form#search should carry the group in input[name=group]');
  await form.locator('input[name=pattern]').fill('ERROR');
  await Promise.all([page.waitForURL((u) => u.pathname === '/console/logs/search'), form.locator('input[name=pattern]').press('Enter')]);
  await expectVisible(page, '#events .event', 'search results (#events .event)');
  const found = await texts(page, '#events .event .msg');
  assert.deepEqual(found.sort(), ['ERROR disk full on /dev/sda', 'ERROR timeout talking to db'],
    `pattern ERROR should find exactly the two ERROR lines, found ${JSON.stringify(found)}`);
  const marks = await texts(page, '#events .event .msg mark');
  assert.ok(marks.length >= 2 && marks.every((m) => m === 'ERROR'), `each result should have ERROR in <mark>; marks: ${JSON.stringify(marks)}`);
  const streams = await texts(page, '#events .event .stream');
  assert.deepEqual(streams, ['app', 'app'], `each result should name its stream in .stream, has ${JSON.stringify(streams)}`);
  await screenshot(page, 'search');

  // Zero results.
  await open(page, server, `/console/logs/search?${q({ group, pattern: 'NOSUCHWORD' })}`);
  await expectVisible(page, '#no-results', '#no-results for a pattern matching nothing');
  assert.equal(await page.locator('#events .event').count(), 0, 'no .event should be shown for zero results');

  // An invalid pattern: HTTP 400, the form is still there, the parser's message in #pattern-error.
  const bad = '{ $.x = ';
  let apiMessage = '';
  try {
    await server.logs('FilterLogEvents', { logGroupName: group, filterPattern: bad });
  } catch (e) {
    apiMessage = e.awsMessage;
  }
  assert.ok(apiMessage, `the API should reject the pattern ${bad}`);
  // "Invalid filter pattern: <what> at character N": the <what> part must appear in the page
  const core = apiMessage.replace(/^Invalid filter pattern:\s*/i, '').replace(/\s+at character \d+$/, '');
  await open(page, server, `/console/logs/search?${q({ group, pattern: bad })}`, 400);
  const err = await expectVisible(page, '#pattern-error', '#pattern-error for an invalid pattern');
  const errText = (await err.textContent()).trim();
  assert.ok(errText.includes(core), `#pattern-error should include the parser's message "${core}", has "${errText}"`);
  await expectVisible(page, 'input[name=pattern]', 'the search form (input[name=pattern]) on the 400 page');
  assert.equal(await page.locator('input[name=pattern]').first().inputValue(), bad, 'the pattern input should keep the invalid pattern for editing');
  await screenshot(page, 'search-error');
});

test('escaping: HTML in messages is shown as text, never run', async ({ page }) => {
  const group = `/e2e/${unique('xss')}`;
  const evil = [
    '<script>window.__pwned=1</script>',
    `"quoted" & 'single' <b>bold</b>`,
    '<img src=x onerror="window.__pwned=2">',
  ];
  const now = Date.now();
  await server.seedStream(group, 's', evil.map((message, i) => ({ timestamp: now - 3000 + i * 1000, message })));

  const check = async (where) => {
    await expectAttached(page, '#events .event .msg', `events on the ${where}`); // a .msg holding a live <script> is invisible
    await sleep(500); // give a broken <img onerror> time to fire
    const pwned = await page.evaluate(() => window.__pwned);
    assert.equal(pwned, undefined, `a message ran as script on the ${where} (window.__pwned = ${pwned})`);
    for (const tag of ['b', 'img', 'script']) {
      assert.equal(await page.locator(`.msg ${tag}`).count(), 0, `the ${where} has a <${tag}> element inside .msg (unescaped HTML)`);
    }
    assert.equal(await page.locator('[onerror]').count(), 0, `the ${where} has an element with an onerror attribute`);
    const shown = await page.locator('#events .event .msg').evaluateAll((els) => els.map((e) => e.textContent.trim()));
    for (const m of evil) {
      assert.ok(shown.includes(m), `the ${where} should show ${JSON.stringify(m)} literally; its .msg texts are ${JSON.stringify(shown)}`);
    }
  };

  await open(page, server, `/console/logs/stream?${q({ group, stream: 's' })}`);
  await check('stream page');
  // ?script ?quoted ?img: any of the three words, so each message is a result (with <mark>s inside)
  await open(page, server, `/console/logs/search?${q({ group, pattern: '?script ?quoted ?img' })}`);
  await check('search page').catch(async (e) => {
    e.message += ` (search page text: ${await pageText(page, 600)})`;
    throw e;
  });
});

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
