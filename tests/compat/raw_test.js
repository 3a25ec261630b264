// raw_test.js - raw HTTP behaviours that OpenPAI clients (the web portal,
// the CLI, scripts with curl) depend on and the SDK does not show:
// text/yaml submission, the job list's two shapes and its query parameters,
// the job detail's field names, the config as text/yaml, and every error as
// {"code", "message"} with the status the spec lists.  Each answer is checked
// against the spec's response schema (lib.js).
//
// Runs after sdk_test.js on the same clusters (run_compat.py sets the same
// environment); OpenPAI's job files as written only go to PAI_HOLLOW_URL.  Prints "ok - name" / "not ok - name"; exits 1 on failure.
'use strict';

const fs = require('fs');
const path = require('path');
const L = require('./lib');

const BASE = process.env.PAI_URL;
const HOLLOW = process.env.PAI_HOLLOW_URL;
const ADMIN = process.env.PAI_ADMIN_USER || 'admin';
const RUN_VC = process.env.PAI_RUN_VC || 'run';
const spec = new L.Spec(process.env.PAI_SPEC);
const sleep = ms => new Promise(r => setTimeout(r, ms));
const short = v => JSON.stringify(v === undefined ? null : v).slice(0, 4000);

// One request: {status, type (content type), body (parsed JSON or text)}.
async function req(method, p, { token, body, type, raw, base } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let data;
  if (raw !== undefined) {
    data = raw;
    headers['Content-Type'] = type || 'text/plain';
  } else if (body !== undefined) {
    data = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  const r = await fetch((base || BASE) + p, { method, headers, body: data });
  const text = await r.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch (e) { /* text */ }
  return { status: r.status, type: r.headers.get('content-type') || '', body: parsed };
}

// A success as the spec says (status and schema), plus more(r) problems.
function expectOk(name, r, method, p, status, more) {
  const probs = [];
  if (r.status !== status) probs.push(`status ${r.status}, expected ${status}`);
  else probs.push(...spec.problems(method, p, status, r.body));
  if (r.status === status && more) for (const [c, what] of more(r.body, r)) if (!c) probs.push(what);
  return L.check(probs.length === 0, name, probs.concat([`got ${short(r.body)}`]).join('\n'));
}

// An error: JSON {"code", "message"} only, the status and code expected, and
// (inSpec) the status one the spec lists for the operation with its schema.
function expectErr(name, r, method, p, status, code, inSpec = true) {
  const probs = [];
  if (r.status !== status) probs.push(`status ${r.status}, expected ${status}`);
  if (!/^application\/json/.test(r.type)) probs.push(`content type ${r.type}`);
  const b = r.body;
  if (!b || typeof b !== 'object' || typeof b.code !== 'string' || typeof b.message !== 'string' || !b.message) {
    probs.push('not {"code", "message"}');
  } else if (b.code !== code) {
    probs.push(`code ${b.code}, expected ${code}`);
  }
  if (inSpec && r.status === status) probs.push(...spec.problems(method, p, status, b));
  return L.check(probs.length === 0, name, probs.concat([`got ${r.status} ${short(b)}`]).join('\n'));
}

async function login(user, pw, base) {
  const r = await req('POST', '/api/v2/authn/basic/login', { body: { username: user, password: pw }, base });
  return r.body.token;
}

// OpenPAI's marketplace PyTorch MNIST job, as text: only its name changed,
// and its VC (the commands run on the process node: made harmless).
function yamlText(name, vc, commands) {
  let t = fs.readFileSync(path.join(process.env.PAI_JOBS_DIR, 'pai__marketplace-v2_pytorch-mnist.yaml'), 'utf8');
  t = t.replace(/^name: .*$/m, `name: ${name}`);
  if (vc) {
    t = t.replace(/^defaults:\n(?: .*\n)*/m, '').replace(/\s*$/, '\n') + `defaults:\n  virtualCluster: ${vc}\n`;
  }
  if (commands) {
    t = t.replace(/^    commands:\n(?:      .*\n)+/m, `    commands:\n${commands.map(c => `      - '${c}'\n`).join('')}`);
  }
  return t;
}

async function main() {
  const admin = await login(ADMIN, process.env.PAI_ADMIN_PASSWORD);
  const hadmin = await login(ADMIN, process.env.PAI_ADMIN_PASSWORD, HOLLOW);
  const H = { token: hadmin, base: HOLLOW };

  // ---- submission as text/yaml ----
  const J = 'raw_yaml_job';
  const text = yamlText(J, RUN_VC, ['echo raw; exit 7']);
  let r = await req('POST', '/api/v2/jobs', { token: admin, raw: text, type: 'text/yaml' });
  expectOk('POST /api/v2/jobs text/yaml: 202 with OpenPAI\'s body', r, 'POST', '/api/v2/jobs', 202, b => [
    [typeof b.message === 'string' && b.message.includes(`${ADMIN}~${J}`), `message names the job: ${b.message}`],
    [/^application\/json/.test(r.type), `content type ${r.type}`],
  ]);
  r = await req('POST', '/api/v2/jobs', { ...H, raw: yamlText('raw_yaml_untouched'), type: 'text/yaml' });
  expectOk('POST /api/v2/jobs: an OpenPAI job file unchanged but its name', r, 'POST', '/api/v2/jobs', 202);
  r = await req('POST', '/api/v2/jobs', { token: admin, raw: text, type: 'text/yaml' });
  expectErr('POST /api/v2/jobs again: 409 ConflictJobError', r, 'POST', '/api/v2/jobs', 409, 'ConflictJobError');
  r = await req('POST', '/api/v2/jobs', { token: admin, raw: 'protocolVersion: 2\nname: [oops\n', type: 'text/yaml' });
  expectErr('POST /api/v2/jobs malformed YAML: 400', r, 'POST', '/api/v2/jobs', 400, 'InvalidProtocolError', false);
  r = await req('POST', '/api/v2/jobs', { raw: text, type: 'text/yaml' });
  expectErr('POST /api/v2/jobs without a token: 401', r, 'POST', '/api/v2/jobs', 401, 'UnauthorizedUserError', false);

  // wait for it to end: FAILED with exit code 7
  let d;
  for (let i = 0; i < 200; i++) {
    d = (await req('GET', `/api/v2/jobs/${ADMIN}~${J}`, { token: admin })).body;
    if (d.jobStatus && ['FAILED', 'SUCCEEDED', 'STOPPED'].includes(d.jobStatus.state)) break;
    await sleep(100);
  }

  // ---- job detail field names ----
  r = await req('GET', `/api/v2/jobs/${ADMIN}~${J}`, { token: admin });
  expectOk('GET /api/v2/jobs/{user}~{job}: OpenPAI\'s field names', r, 'GET', '/api/v2/jobs/{user}~{job}', 200, b => {
    const s = b.jobStatus || {};
    const roles = Object.keys(b.taskRoles || {});
    const ts = roles.length ? b.taskRoles[roles[0]].taskStatuses[0] || {} : {};
    return [
      [b.name === J, 'name'],
      [s.state === 'FAILED' && s.username === ADMIN && s.virtualCluster === RUN_VC, `jobStatus.state ${s.state}`],
      // 7 is not in OpenPAI's exit-code table: the spec entry is its fallback for undefined codes
      [s.appExitCode === 7 && s.appExitSpec && typeof s.appExitSpec.phrase === 'string', `appExitCode ${s.appExitCode}`],
      [typeof s.completedTime === 'number' && typeof s.submissionTime === 'number', 'times in ms'],
      [s.subState === 'Completed' && s.executionType === 'START', `subState ${s.subState}`],
      [roles.length === 1 && b.taskRoles[roles[0]].taskRoleStatus && b.taskRoles[roles[0]].taskRoleStatus.name === roles[0],
        'taskRoles.<role>.taskRoleStatus.name'],
      [ts.taskIndex === 0 && ts.taskState === 'FAILED' && ts.containerExitCode === 7, `taskStatuses[0] ${short(ts)}`],
      [typeof ts.containerId === 'string' && ts.containerNodeName === 'run-n1' && typeof ts.containerIp === 'string',
        'containerId, containerNodeName, containerIp'],
      [ts.containerExitSpec && typeof ts.containerExitSpec.code === 'number', 'containerExitSpec'],
      [typeof ts.containerLog === 'string', 'containerLog'],
    ];
  });

  // ---- logs: OpenPAI's server and portal spell the tail flag tail-mode ----
  const logs = `/api/v2/jobs/${ADMIN}~${J}/attempts/0/taskRoles/worker/taskIndex/0/attempts/0/logs`;
  r = await req('GET', `${logs}?tail-mode=true`, { token: admin });
  expectOk('task log locations with tail-mode=true', r, 'GET',
    '/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}/taskRoles/{taskRoleName}/taskIndex/{taskIndex}/attempts/{taskAttemptId}/logs',
    200, b => [[b.locations.every(l => /tailMode=true/.test(l.uri)), 'tail URIs']]);
  r = await req('GET', `${logs}/stdout?tail-mode=true`, { token: admin });
  L.check(r.status === 200 && typeof r.body === 'string' && r.body.includes('raw'), 'the stdout tail with tail-mode=true',
    `${r.status} ${short(r.body)}`);

  // ---- config as text/yaml ----
  r = await req('GET', `/api/v2/jobs/${ADMIN}~${J}/config`, { token: admin });
  L.check(r.status === 200 && /yaml/.test(r.type) && typeof r.body === 'string' && r.body.includes(`name: ${J}`),
    'GET .../config: 200 text/yaml with the job', `${r.status} ${r.type} ${short(r.body)}`);

  // ---- the job list: both shapes, filters, paging, order ----
  // (on the hollow cluster, which holds OpenPAI's 31 real jobs)
  r = await req('GET', `/api/v2/jobs?username=${ADMIN}`, H);
  const all = Array.isArray(r.body) ? r.body : [];
  expectOk('GET /api/v2/jobs?username=: an array of JobSummary', r, 'GET', '/api/v2/jobs', 200, b => [
    [Array.isArray(b) && b.length >= 30 && b.every(j => j.username === ADMIN), `${b.length} jobs`],
    [b.every(j => typeof j.name === 'string' && typeof j.state === 'string' && 'appExitCode' in j && 'virtualCluster' in j),
      'name, state, appExitCode, virtualCluster'],
    [b.every((j, i) => i === 0 || b[i - 1].submissionTime >= j.submissionTime), 'submissionTime,DESC by default'],
  ]);
  r = await req('GET', `/api/v2/jobs?username=${ADMIN}&offset=2&limit=3&withTotalCount=true`, H);
  expectOk('GET /api/v2/jobs?username=&offset=&limit=&withTotalCount=true: {totalCount, data}', r, 'GET',
    '/api/v2/jobs', 200, b => [
      [b.totalCount === all.length, `totalCount ${b.totalCount}, expected ${all.length}`],
      [Array.isArray(b.data) && b.data.length === 3, `${b.data && b.data.length} items`],
      [b.data && all.length > 4 && b.data[0].name === all[2].name, 'the page starts at offset 2'],
    ]);
  r = await req('GET', `/api/v2/jobs?username=${ADMIN}&offset=&limit=&withTotalCount=true`, H);
  expectOk('GET /api/v2/jobs?offset=&limit= (empty): the defaults', r, 'GET', '/api/v2/jobs', 200, b => [
    [b.totalCount === all.length && b.data.length === all.length, `totalCount ${b.totalCount}, ${b.data.length} items`],
  ]);
  r = await req('GET', '/api/v2/jobs?order=jobName,ASC&limit=5', H);
  expectOk('GET /api/v2/jobs?order=jobName,ASC', r, 'GET', '/api/v2/jobs', 200, b => [
    [b.length === 5 && b.every((j, i) => i === 0 || b[i - 1].name <= j.name), `names ${b.map(j => j.name)}`],
  ]);
  // completionTime: unfinished jobs (null) first with DESC, last with ASC (the spec's rule)
  const nullsAt = b => b.map(j => j.completedTime === null);
  const sortedBy = (b, desc) => b.filter(j => j.completedTime !== null)
    .every((j, i, a) => i === 0 || (desc ? a[i - 1].completedTime >= j.completedTime : a[i - 1].completedTime <= j.completedTime));
  r = await req('GET', '/api/v2/jobs?order=completionTime,DESC', H);
  expectOk('GET /api/v2/jobs?order=completionTime,DESC: unfinished first', r, 'GET', '/api/v2/jobs', 200, b => [
    [b.some(j => j.completedTime === null) && nullsAt(b).every((n, i, a) => i === 0 || !n || a[i - 1]), 'nulls first'],
    [sortedBy(b, true), 'then newest first'],
  ]);
  r = await req('GET', '/api/v2/jobs?order=completionTime,ASC', H);
  expectOk('GET /api/v2/jobs?order=completionTime,ASC: unfinished last', r, 'GET', '/api/v2/jobs', 200, b => [
    [nullsAt(b).every((n, i, a) => i === 0 || n || !a[i - 1]), 'nulls last'],
    [sortedBy(b, false), 'oldest first'],
  ]);
  // username order: a user name that is a prefix of another sorts first
  await req('POST', '/api/v2/users', { token: admin, body: { username: 'sdk_test', password: 'prefix-pw-1' } });
  const pre = await login('sdk_test', 'prefix-pw-1');
  await req('POST', '/api/v2/jobs', { token: pre, raw: yamlText('prefix_user_job', 'default', ['true']), type: 'text/yaml' });
  r = await req('GET', '/api/v2/jobs?username=sdk_test_user,sdk_test&order=username,ASC', { token: admin });
  expectOk('GET /api/v2/jobs?order=username,ASC', r, 'GET', '/api/v2/jobs', 200, b => [
    [b.length >= 2 && b[0].username === 'sdk_test' && b.every((j, i) => i === 0 || b[i - 1].username <= j.username),
      `users ${b.map(j => j.username)}`],
  ]);
  r = await req('GET', `/api/v2/jobs?vc=${RUN_VC}&state=FAILED&keyword=raw_yaml&withTotalCount=true`, { token: admin });
  expectOk('GET /api/v2/jobs?vc=&state=&keyword=', r, 'GET', '/api/v2/jobs', 200, b => [
    [b.totalCount === 1 && b.data[0].name === J, `totalCount ${b.totalCount}`],
  ]);
  r = await req('GET', '/api/v2/jobs?jobPriority=default&withTotalCount=true&limit=1', H);
  expectOk('GET /api/v2/jobs?jobPriority=default', r, 'GET', '/api/v2/jobs', 200, b => [[b.totalCount >= 1, 'some jobs']]);
  r = await req('GET', '/api/v2/jobs?limit=50001', { token: admin });
  expectErr('GET /api/v2/jobs?limit over 50000: 400 InvalidParametersError', r, 'GET', '/api/v2/jobs', 400,
    'InvalidParametersError', false);

  // ---- errors: {"code", "message"} with the spec's status ----
  r = await req('GET', `/api/v2/jobs/${ADMIN}~no_such_job`, { token: admin });
  expectErr('GET an unknown job: 404 NoJobError', r, 'GET', '/api/v2/jobs/{user}~{job}', 404, 'NoJobError');
  r = await req('GET', `/api/v2/jobs/${ADMIN}~no_such_job/config`, { token: admin });
  expectErr('GET the config of an unknown job: 404 NoJobError', r, 'GET', '/api/v2/jobs/{user}~{job}/config', 404,
    'NoJobError', false);
  r = await req('GET', `/api/v2/jobs/${ADMIN}~${J}/attempts/5`, { token: admin });
  expectErr('GET an attempt the job does not have: 404 NoJobError', r, 'GET',
    '/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}', 404, 'NoJobError');
  r = await req('GET', `/api/v2/jobs/${ADMIN}~${J}/job-attempts/5`, { token: admin });
  expectErr('GET a job-attempt the job does not have: 404', r, 'GET',
    '/api/v2/jobs/{user}~{job}/job-attempts/{attemptIndex}', 404, 'NoJobError', false);
  r = await req('GET', `/api/v2/jobs/${ADMIN}~${J}/attempts/0/taskRoles/nosuchrole/taskIndex/0/attempts`, { token: admin });
  expectErr('GET the task of an unknown role: 404 NoTaskError', r, 'GET',
    '/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}/taskRoles/{taskRoleName}/taskIndex/{taskIndex}/attempts', 404,
    'NoTaskError');
  r = await req('PUT', `/api/v2/jobs/${ADMIN}~no_such_job/executionType`, { token: admin, body: { value: 'STOP' } });
  expectErr('stop an unknown job: 404 NoJobError', r, 'PUT', '/api/v2/jobs/{user}~{job}/executionType', 404, 'NoJobError');
  r = await req('PUT', `/api/v2/jobs/${ADMIN}~${J}/executionType`, { token: admin, body: { value: 'PAUSE' } });
  expectErr('executionType PAUSE: 400 InvalidParametersError', r, 'PUT', '/api/v2/jobs/{user}~{job}/executionType', 400,
    'InvalidParametersError', false);
  r = await req('GET', '/api/v2/users/no_such_user', { token: admin });
  expectErr('GET an unknown user: 404 NoUserError', r, 'GET', '/api/v2/users/{user}', 404, 'NoUserError');
  r = await req('GET', '/api/v2/virtual-clusters/no_such_vc', { token: admin });
  expectErr('GET an unknown VC: 404 NoVirtualClusterError', r, 'GET', '/api/v2/virtual-clusters/{vc}', 404,
    'NoVirtualClusterError');
  r = await req('GET', '/api/v2/users');
  expectErr('GET /api/v2/users without a token: 401', r, 'GET', '/api/v2/users', 401, 'UnauthorizedUserError', false);
  r = await req('GET', '/api/v2/users', { token: 'not-a-token' });
  expectErr('a made-up token: 401 UnauthorizedUserError', r, 'GET', '/api/v2/users', 401, 'UnauthorizedUserError', false);
  r = await req('POST', '/api/v2/authn/basic/login', { raw: 'username=admin&password=wrong', type: 'application/x-www-form-urlencoded' });
  expectErr('form login with a wrong password: 400 IncorrectPasswordError', r, 'POST', '/api/v2/authn/basic/login',
    400, 'IncorrectPasswordError');
  r = await req('POST', '/api/v2/users', { token: admin, raw: '{"username": ', type: 'application/json' });
  expectErr('malformed JSON: 400 InvalidParametersError', r, 'POST', '/api/v2/users', 400, 'InvalidParametersError',
    false);
  r = await req('GET', '/api/v2/no/such/path', { token: admin });
  expectErr('an unknown path: 404 NoApiError', r, 'GET', '/api/v2/no/such/path', 404, 'NoApiError', false);
  r = await req('GET', '/api/v2/alerts', { token: admin });
  expectErr('GET /api/v2/alerts: 501 NotImplementedError', r, 'GET', '/api/v2/alerts', 501, 'NotImplementedError', false);
  r = await req('GET', '/api/v2/info');
  expectOk('GET /api/v2/info without a token', r, 'GET', '/api/v2/info', 200);

  // leave nothing running
  for (const who of [{ token: admin }, H]) {
    r = await req('GET', '/api/v2/jobs?state=WAITING,RUNNING', who);
    for (const j of Array.isArray(r.body) ? r.body : []) {
      await req('PUT', `/api/v2/jobs/${j.username}~${j.name}/executionType`, { ...who, body: { value: 'STOP' } });
    }
  }
  // ... and wait until the process node's tasks are gone (stopping the agent leaves tasks running)
  let busy = [];
  for (let i = 0; i < 300; i++) {
    r = await req('GET', `/api/v2/jobs?vc=${RUN_VC}&state=WAITING,RUNNING,STOPPING`, { token: admin });
    busy = Array.isArray(r.body) ? r.body.map(j => j.name) : ['?'];
    if (!busy.length) break;
    await sleep(100);
  }
  L.check(busy.length === 0, "every job on the process node ended", JSON.stringify(r.body).slice(0, 3000));
  return L.summary();
}

main().then(f => process.exit(f ? 1 : 0), e => {
  L.notOk('raw_test.js crashed', e && e.stack);
  process.exit(1);
});
