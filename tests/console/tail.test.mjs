// Console: live tail — new lines arrive within seconds, pause/resume, and a filter pattern.
import assert from 'node:assert/strict';
import { useConsole, unique, open, expectVisible, eventually, texts, screenshot, sleep, pageText } from './harness.mjs';

const { test, server } = useConsole();
const q = (params) => new URLSearchParams(params).toString();

/** Opens the tail page of group/stream and waits for #tail-status to say "live". */
async function openTail(page, group, stream) {
  await open(page, server, `/console/logs/tail?${q({ group, stream })}`);
  await expectVisible(page, '#tail', 'the tail page (#tail)');
  await waitStatus(page, 'live');
}

async function waitStatus(page, want, timeout = 10_000) {
  const status = page.locator('#tail-status');
  await eventually(async () => (await status.textContent()).toLowerCase().includes(want), {
    timeout,
    message: async () => `#tail-status should say "${want}" within ${timeout} ms; it says ${JSON.stringify(await status.textContent().catch(() => null))} on ${page.url()}`,
  });
}

/** Locator of the tail lines whose .msg contains `text`. */
const tailLine = (page, text) => page.locator('#tail-lines .event .msg', { hasText: text });

async function expectTailLine(page, text, timeout = 5000) {
  try {
    await tailLine(page, text).first().waitFor({ state: 'visible', timeout });
  } catch {
    const lines = await texts(page, '#tail-lines .event .msg').catch(() => []);
    throw new Error(`"${text}" did not appear in #tail-lines within ${timeout} ms; #tail-lines has ${JSON.stringify(lines.slice(-10))}, `
      + `#tail-status is ${JSON.stringify(await page.locator('#tail-status').textContent().catch(() => null))}`);
  }
}

async function seedTailStream() {
  const group = `/e2e/${unique('tail')}`;
  const stream = 'live';
  await server.seedStream(group, stream, ['before the tail opened']);
  return { group, stream };
}

test('tail: a new line appears within 5 s', async ({ page, t }) => {
  const { group, stream } = await seedTailStream();
  await openTail(page, group, stream);
  const line = `fresh ${unique('line')}`;
  const t0 = Date.now();
  await server.putLogEvents(group, stream, [line]);
  await expectTailLine(page, line, 5000);
  const latency = Date.now() - t0;
  t.diagnostic(`tail latency: ${latency} ms (target ~1000 ms)`);
  await screenshot(page, 'tail');
});

test('tail: pause holds new lines back, resume delivers them', async ({ page }) => {
  const { group, stream } = await seedTailStream();
  await openTail(page, group, stream);
  const button = await expectVisible(page, '#tail-pause', 'the pause button #tail-pause');
  assert.match((await button.textContent()).trim(), /^pause$/i, 'a live tail\'s button should read "Pause"');

  await button.click();
  await eventually(async () => /^resume$/i.test((await button.textContent()).trim()), {
    message: async () => `after clicking Pause, #tail-pause should read "Resume"; reads ${JSON.stringify(await button.textContent())}`,
  });
  await waitStatus(page, 'paused', 3000);

  const missed = `while paused ${unique('line')}`;
  await server.putLogEvents(group, stream, [missed]);
  await sleep(2000);
  assert.equal(await tailLine(page, missed).count(), 0, `"${missed}" appeared in #tail-lines while the tail was paused`);

  await button.click();
  await eventually(async () => /^pause$/i.test((await button.textContent()).trim()), {
    message: async () => `after clicking Resume, #tail-pause should read "Pause"; reads ${JSON.stringify(await button.textContent())}`,
  });
  await waitStatus(page, 'live', 3000);
  await expectTailLine(page, missed, 5000);
});

test('tail: a filter pattern shows only matching new lines', async ({ page }) => {
  const { group, stream } = await seedTailStream();
  await openTail(page, group, stream);
  const filter = await expectVisible(page, '#tail-filter', 'the filter input #tail-filter');
  await filter.fill('MATCHME');
  await filter.press('Enter');
  await sleep(500); // the tail restarts with the pattern
  await waitStatus(page, 'live');

  const id = unique('f');
  const other = `other line ${id}`;
  const wanted = `MATCHME line ${id}`;
  await server.putLogEvents(group, stream, [other]);
  await server.putLogEvents(group, stream, [wanted]);
  await expectTailLine(page, wanted, 5000);
  await sleep(1000); // the non-matching line, written first, would have arrived by now
  assert.equal(await tailLine(page, other).count(), 0,
    `"${other}" does not match MATCHME but appeared in #tail-lines (${await pageText(page, 500)})`);
});
