// Checks the harness itself, with no console involved: lookout starts and answers /ready, the API
// helpers seed every service the console tests need, and Chromium launches. When this file fails,
// the console tests' failures are about the environment, not the console.
import assert from 'node:assert/strict';
import { test as plainTest } from 'node:test';
import { useConsole, unique, signV4 } from './harness.mjs';

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

plainTest('harness: the SigV4 signer matches AWS\'s test suite (get-vanilla, post-x-www-form-urlencoded)', () => {
  // crates/sigv4/tests/vectors/<name>/header-signature.txt
  const common = {
    host: 'example.amazonaws.com', service: 'service', region: 'us-east-1', now: new Date('2015-08-30T12:36:00Z'),
    credentials: { id: 'AKIDEXAMPLE', secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
  };
  const get = signV4({ ...common, method: 'GET' });
  assert.equal(get['X-Amz-Date'], '20150830T123600Z');
  assert.equal(get.Authorization, 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, '
    + 'SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
  const post = signV4({
    ...common,
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '13',
      'x-amz-content-sha256': '9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e',
    },
    body: 'Param1=value1',
  });
  assert.match(post.Authorization, / SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, /);
  assert.match(post.Authorization, /Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b$/);
});
