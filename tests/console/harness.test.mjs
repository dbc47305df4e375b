// Checks the harness itself, with no console involved: lookout starts and answers /ready, the API
// helpers seed every service the console tests need, and Chromium launches. When this file fails,
// the console tests' failures are about the environment, not the console.
import assert from 'node:assert/strict';
import { useConsole, unique } from './harness.mjs';

const { test, server } = useConsole();

test('harness: lookout answers /ready and the browser loads it', async ({ page }) => {
  const resp = await page.goto(server.url('/ready'));
  assert.equal(resp.status(), 200, `GET /ready in the browser answered ${resp.status()}`);
});

test('harness: seeding through the AWS APIs works', async () => {
  // CloudWatch Logs
  const group = `/e2e/${unique('harness')}`;
  await server.seedStream(group, 'one', ['hello from the harness']);
  const got = await server.logs('GetLogEvents', { logGroupName: group, logStreamName: 'one', startFromHead: true });
  assert.deepEqual(got.events.map((e) => e.message), ['hello from the harness']);
  // errors carry the server's message
  await assert.rejects(server.createLogGroup(group), /ResourceAlreadyExistsException/);

  // ECS: a task that fails with exit code 3 and logs to /ecs/e2e
  const family = unique('harness-fail');
  await server.registerTaskDefinition(family, 'echo starting; echo boom >&2; exit 3');
  const { arn, id } = await server.runTask(family);
  const task = await server.waitTaskStopped(arn);
  assert.equal(task.containers[0].exitCode, 3, `exit code: ${JSON.stringify(task.containers)}`);
  await server.waitLogLines('/ecs/e2e', `ecs/app/${id}`, ['starting', 'boom']);

  // EventBridge
  await server.events('PutRule', { Name: unique('harness-rule'), EventPattern: JSON.stringify({ source: ['aws.ecs'] }) });
  const put = await server.events('PutEvents', { Entries: [{ Source: 'e2e', DetailType: 'test', Detail: '{}' }] });
  assert.equal(put.FailedEntryCount, 0);

  // SNS (Query protocol)
  const topic = await server.createTopic(unique('harness-topic'));
  const sub = await server.subscribe(topic, 'http', 'http://127.0.0.1:9/hook');
  assert.match(sub, /pending confirmation/i);
});
