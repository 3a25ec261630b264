// sdk_test.js - drives OpenPAI's official JavaScript SDK
// (@microsoft/openpai-js-sdk, pinned in package-lock.json) through every
// operation it offers against a running pai cluster, and checks each answer
// against the OpenPAI REST API v2 spec: the status, the body's schema, the
// error code, and the SDK's own error class.
//
// Environment (set by run_compat.py): PAI_URL, PAI_HOLLOW_URL (a cluster
// whose only node is hollow, for OpenPAI's job files as written), PAI_ADMIN_USER,
// PAI_ADMIN_PASSWORD, PAI_SPEC (the spec file), PAI_JOBS_DIR (OpenPAI's
// job files), PAI_RUN_VC (a VC whose node runs tasks with the process
// runtime).  Prints "ok - name" / "not ok - name"; exits 1 on any failure.
'use strict';

const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const { PAIV2 } = require('@microsoft/openpai-js-sdk');
const { NoJobError } = require('@microsoft/openpai-js-sdk/lib/src/commom/errors/paiJobErrors');
const UserErrors = require('@microsoft/openpai-js-sdk/lib/src/commom/errors/paiUserErrors');
const { PAIBaseError } = require('@microsoft/openpai-js-sdk/lib/src/commom/errors/paiBaseError');
const L = require('./lib');

const URL_ = process.env.PAI_URL;
const ADMIN = process.env.PAI_ADMIN_USER || 'admin';
const ADMIN_PW = process.env.PAI_ADMIN_PASSWORD;
const RUN_VC = process.env.PAI_RUN_VC || 'run';
const spec = new L.Spec(process.env.PAI_SPEC);
const host = URL_.replace(/^https?:\/\//, '');

const USER = 'sdk_test_user';
const USER_PW = 'test_password';
const GROUP = 'sdktestgroup';

function client(extra) {
  return new PAIV2.OpenPAIClient({ rest_server_uri: host, https: false, ...extra });
}

const sleep = ms => new Promise(r => setTimeout(r, ms));
const short = v => JSON.stringify(v === undefined ? null : v).slice(0, 300);

// A call expected to succeed with STATUS: its result validates against the
// spec's schema for METHOD PATH / STATUS.  more(res) returns extra
// [condition, detail] problems.  Returns the result (undefined on failure).
async function expectOk(name, method, p, status, fn, more) {
  let res;
  try {
    res = await fn();
  } catch (e) {
    L.notOk(name, `threw ${e.status || ''} ${short(e.data || e.message)}`);
    return undefined;
  }
  const probs = p ? spec.problems(method, p, status, res) : [];
  if (more) {
    for (const [cond, what] of more(res)) if (!cond) probs.push(what);
  }
  L.check(probs.length === 0, name, probs.concat([`got ${short(res)}`]).join('\n'));
  return res;
}

// A call expected to fail with STATUS and CODE, raised by the SDK as
// errClass; the error body must validate against the spec's response for
// that status (unless inSpec is false: pai answers an error the spec does
// not document for this operation, e.g. a malformed parameter).
async function expectErr(name, method, p, status, code, errClass, fn, inSpec = true) {
  let res;
  try {
    res = await fn();
  } catch (e) {
    const probs = [];
    // Calls made with a response processor (oidcLogin, getJobConfig) leave
    // the error body as text: the SDK then has no code to pick a class from.
    if (e && typeof e.data === 'string') {
      try {
        e.data = JSON.parse(e.data);
      } catch (x) { /* stays text: reported below */ }
    }
    if (!(e instanceof PAIBaseError)) probs.push(`not an SDK error: ${e && e.message}`);
    if (e.status !== status) probs.push(`status ${e.status}, expected ${status}`);
    if (!e.data || e.data.code !== code) probs.push(`code ${e.data && e.data.code}, expected ${code}`);
    if (!e.data || typeof e.data.message !== 'string' || !e.data.message) probs.push('no message');
    if (errClass && !(e instanceof errClass)) probs.push(`the SDK raised ${e.constructor.name}, expected ${errClass.name}`);
    if (inSpec && e.status === status) probs.push(...spec.problems(method, p, status, e.data));
    L.check(probs.length === 0, name, probs.concat([`got ${short(e.data)}`]).join('\n'));
    return e;
  }
  L.notOk(name, `succeeded: ${short(res)}`);
  return undefined;
}

async function waitJob(c, user, job, pred, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  let d;
  while (Date.now() < end) {
    try {
      d = await c.job.getJob(user, job);
      if (pred(d)) return d;
    } catch (e) {
      d = e.data;
    }
    await sleep(150);
  }
  return d;
}

const finished = d => d && d.jobStatus && ['SUCCEEDED', 'FAILED', 'STOPPED'].includes(d.jobStatus.state);

// ---- info, login, tokens --------------------------------------------------------

async function testAuth(admin) {
  await expectOk('api.getClusterInfo', 'GET', '/api/v2/info', 200, () => admin.api.getClusterInfo(), r => [
    [r.authnMethod === 'basic', 'authnMethod is basic (the SDK skips OIDC tests then)'],
    [['k8s', 'yarn'].includes(r.launcherType), 'launcherType is k8s or yarn'],
  ]);
  await expectOk('authn.basicLogin (admin)', 'POST', '/api/v2/authn/basic/login', 200,
    () => admin.authn.basicLogin(ADMIN, ADMIN_PW), r => [[r.user === ADMIN && r.admin === true, 'user/admin fields']]);
  await expectErr('authn.basicLogin: wrong password', 'POST', '/api/v2/authn/basic/login', 400,
    'IncorrectPasswordError', PAIBaseError, () => admin.authn.basicLogin(ADMIN, 'incorrectpassword'));
  // pai answers an unknown name as a wrong password (no user enumeration; docs/api.md)
  await expectErr('authn.basicLogin: no such user', 'POST', '/api/v2/authn/basic/login', 400,
    'IncorrectPasswordError', PAIBaseError, () => admin.authn.basicLogin('nonexistentuser', 'password'));

  // A client given only a user name and password logs in by itself.
  const lazy = client({ username: ADMIN, password: ADMIN_PW });
  await expectOk('a client without a token logs in on first use', 'GET', '/api/v2/virtual-clusters', 200,
    () => lazy.virtualCluster.listVirtualClusters(), () => [[!!lazy.virtualCluster.cluster.token, 'token kept']]);

  await expectOk('token.getTokens', 'GET', '/api/v2/tokens', 200, () => admin.token.getTokens(),
    r => [[Array.isArray(r.tokens) && r.tokens.length >= 1, 'at least the current token']]);
  const app = await expectOk('token.createApplicationToken', 'POST', '/api/v2/tokens/application', 200,
    () => admin.token.createApplicationToken(), r => [[r.application === true && typeof r.token === 'string', 'token, application']]);
  if (!app) return;
  const appc = client({ token: app.token });
  await expectOk('an application token lists jobs', 'GET', '/api/v2/jobs', 200, () => appc.job.listJobs());
  await expectErr('an application token may not list users', 'GET', '/api/v2/users', 403, 'ForbiddenUserError',
    UserErrors.ForbiddenUserError, () => appc.user.getAllUser(), false);
  await expectOk('token.deleteToken (the application token)', 'DELETE', '/api/v2/tokens/{token}', 200,
    () => admin.token.deleteToken(app.token));
  await expectErr('a revoked token is refused', 'GET', '/api/v2/jobs', 401, 'UnauthorizedUserError',
    UserErrors.UnauthorizedUserError, () => appc.job.listJobs(), false);

  // logout revokes the token used
  const tmp = client({ username: ADMIN, password: ADMIN_PW });
  await expectOk('authn.basicLogout', 'DELETE', '/api/v2/authn/basic/logout', 200, () => tmp.authn.basicLogout());
  await expectErr('the logged-out token is refused', 'DELETE', '/api/v2/authn/basic/logout', 401,
    'UnauthorizedUserError', UserErrors.UnauthorizedUserError, () => tmp.authn.basicLogout());
  await expectErr('authn.oidcLogin: pai has basic authentication only', 'GET', '/api/v2/authn/oidc/login', 501,
    'NotImplementedError', PAIBaseError, () => admin.authn.oidcLogin(), false);
}

// ---- users and groups -------------------------------------------------------------

async function testUsers(admin) {
  await expectOk('user.createUser', 'POST', '/api/v2/users', 201,
    () => admin.user.createUser({ username: USER, password: USER_PW }));
  await expectErr('user.createUser: conflict', 'POST', '/api/v2/users', 409, 'ConflictUserError',
    UserErrors.ConflictUserError, () => admin.user.createUser({ username: USER, password: USER_PW }));
  await expectOk('user.getUser', 'GET', '/api/v2/users/{user}', 200, () => admin.user.getUser(USER),
    r => [[r.username === USER && Array.isArray(r.grouplist) && r.admin === false, 'fields']]);
  await expectErr('user.getUser: no such user', 'GET', '/api/v2/users/{user}', 404, 'NoUserError',
    UserErrors.NoUserError, () => admin.user.getUser('non_exist_user'));
  await expectOk('user.getAllUser', 'GET', '/api/v2/users', 200, () => admin.user.getAllUser(),
    r => [[Array.isArray(r) && r.some(u => u.username === USER), 'lists the new user']]);
  await expectOk('user.updateUser (patch)', 'PUT', '/api/v2/users', 201,
    () => admin.user.updateUser({ username: USER, email: 'new_email@test1.com' }));
  await expectOk('user.updateUser (patch: false)', 'PUT', '/api/v2/users', 201, () => admin.user.updateUser({
    username: USER, email: 'new_email@test2.com', virtualCluster: ['default', RUN_VC], admin: false,
    password: 'new_test_password', extension: {},
  }, false));
  await expectOk('the update took effect', 'GET', '/api/v2/users/{user}', 200, () => admin.user.getUser(USER),
    r => [[r.email === 'new_email@test2.com', `email ${r.email}`]]);
  await expectErr('user.updateUser: no such user', 'PUT', '/api/v2/users', 404, 'NoUserError',
    UserErrors.NoUserError, () => admin.user.updateUser({ username: 'non_exist_user', email: 'a@b.c' }));

  const u = client({ username: USER, password: 'new_test_password' });
  await expectOk('user.updateUserSelf (patch)', 'PUT', '/api/v2/users/me', 201,
    () => u.user.updateUserSelf({ username: USER, email: 'self@test1.com' }));
  await expectOk('user.updateUserSelf (password, patch: false)', 'PUT', '/api/v2/users/me', 201,
    () => u.user.updateUserSelf({ username: USER, email: 'self@test2.com', oldPassword: 'new_test_password', newPassword: USER_PW }, false));
  await expectErr('user.updateUserSelf: another user name', 'PUT', '/api/v2/users/me', 403, 'ForbiddenUserError',
    UserErrors.ForbiddenUserError, () => u.user.updateUserSelf({ username: 'incorrect_username', email: 'x@y.z' }));
  // OpenPAI's updateUserSelf: 403 ForbiddenUserError "Pls input the correct password."
  await expectErr('user.updateUserSelf: wrong old password', 'PUT', '/api/v2/users/me', 403, 'ForbiddenUserError',
    PAIBaseError, () => u.user.updateUserSelf({ username: USER, oldPassword: 'nope-nope', newPassword: 'whatever1' }), false);
  const u2 = client({ username: USER, password: USER_PW });
  await expectOk('the new password logs in', 'GET', '/api/v2/users/{user}', 200, () => u2.user.getUser(USER));
  await expectErr('user.createUser by a non-admin', 'POST', '/api/v2/users', 403, 'ForbiddenUserError',
    UserErrors.ForbiddenUserError, () => u2.user.createUser({ username: 'x_by_user', password: 'pw-123456' }));
  await expectErr('user.deleteUser by a non-admin', 'DELETE', '/api/v2/users/{user}', 403, 'ForbiddenUserError',
    UserErrors.ForbiddenUserError, () => u2.user.deleteUser(ADMIN));

  await expectOk('group.createGroup', 'POST', '/api/v2/groups', 201, () => admin.group.createGroup({ groupname: GROUP }));
  await expectErr('group.createGroup: conflict', 'POST', '/api/v2/groups', 409, 'ConflictGroupError', PAIBaseError,
    () => admin.group.createGroup({ groupname: GROUP }), false);
  await expectOk('group.getAllGroup', 'GET', '/api/v2/groups', 200, () => admin.group.getAllGroup(),
    r => [[r.some(g => g.groupname === GROUP), 'lists the new group']]);
  await expectOk('group.updateGroup', 'PUT', '/api/v2/groups', 201,
    () => admin.group.updateGroup({ data: { groupname: GROUP, description: 'test update group' }, patch: true }));
  await expectOk('group.getGroup', 'GET', '/api/v2/groups/{group}', 200, () => admin.group.getGroup(GROUP),
    r => [[r.description === 'test update group', `description ${r.description}`]]);
  await expectErr('group.getGroup: no such group', 'GET', '/api/v2/groups/{group}', 404, 'NoGroupError', PAIBaseError,
    () => admin.group.getGroup('nosuchgroup'), false);
  await expectOk('user.updateUserGroup', 'PUT', '/api/v2/users/{user}/group/', 201,
    () => admin.user.updateUserGroup(USER, GROUP));
  await expectErr('user.updateUserGroup: no such user', 'PUT', '/api/v2/users/{user}/group/', 404, 'NoUserError',
    UserErrors.NoUserError, () => admin.user.updateUserGroup('non_exist_user', GROUP));
  await expectOk('group.getGroupMembers', 'GET', '/api/v2/groups/{group}/userlist', 200,
    () => admin.group.getGroupMembers(GROUP), r => [[r.some(m => m.username === USER), 'the member is listed']]);
  await expectOk('user.deleteUserGroup', 'DELETE', '/api/v2/users/{user}/group/', 201,
    () => admin.user.deleteUserGroup(USER, GROUP));
  await expectErr('user.deleteUserGroup: no such user', 'DELETE', '/api/v2/users/{user}/group/', 404, 'NoUserError',
    UserErrors.NoUserError, () => admin.user.deleteUserGroup('non_exist_user', GROUP));
  await expectOk('user.updateUserGrouplist', 'PUT', '/api/v2/users/{user}/grouplist/', 201,
    () => admin.user.updateUserGrouplist(USER, ['default', RUN_VC, GROUP]));
  await expectOk('the grouplist took effect', 'GET', '/api/v2/users/{user}', 200, () => admin.user.getUser(USER),
    r => [[r.grouplist.includes(GROUP), `grouplist ${r.grouplist}`]]);
  await expectErr('user.updateUserGrouplist: no such user', 'PUT', '/api/v2/users/{user}/grouplist/', 404,
    'NoUserError', UserErrors.NoUserError, () => admin.user.updateUserGrouplist('non_exist_user', ['default']));
  await expectOk('group.deleteGroup', 'DELETE', '/api/v2/groups/{group}', 201, () => admin.group.deleteGroup(GROUP));
  return u2;
}

// ---- virtual clusters, storages, nodes ---------------------------------------------

async function testCluster(admin, user) {
  await expectOk('virtualCluster.listVirtualClusters', 'GET', '/api/v2/virtual-clusters', 200,
    () => admin.virtualCluster.listVirtualClusters(), r => [[r.default && r[RUN_VC], 'default and run VCs']]);
  await expectOk('virtualCluster.getVirtualCluster', 'GET', '/api/v2/virtual-clusters/{vc}', 200,
    () => user.virtualCluster.getVirtualCluster('default'));
  await expectErr('virtualCluster.getVirtualCluster: no such VC', 'GET', '/api/v2/virtual-clusters/{vc}', 404,
    'NoVirtualClusterError', PAIBaseError, () => admin.virtualCluster.getVirtualCluster('nosuchvc'));
  // not in the spec (2.2.7) but in the SDK: {sku: {gpu, cpu, memory}} per GPU, as OpenPAI's /cluster/sku-types
  await expectOk('virtualCluster.getVirtualClusterSkuTypes', 'GET', null, 200,
    () => admin.virtualCluster.getVirtualClusterSkuTypes(RUN_VC), r => [
      [r && r.V100 && r.V100.gpu === 1 && r.V100.cpu > 0 && r.V100.memory > 0, 'the VC\'s SKU V100 with gpu/cpu/memory'],
      [r && !r.A100, 'only this VC\'s SKUs']]);
  await expectOk('storage.getStorages', 'GET', '/api/v2/storages', 200, () => user.storage.getStorages(),
    r => [[r.storages.some(s => s.name === 'compat-nfs'), 'the configured storage is listed']]);
  await expectOk('storage.getStorage', 'GET', '/api/v2/storages/{storage}', 200, () => user.storage.getStorage('compat-nfs'),
    r => [[r.type === 'nfs' && r.data && r.data.server === '10.0.0.1', 'type and data']]);
  await expectErr('storage.getStorage: no such storage', 'GET', '/api/v2/storages/{storage}', 404, 'NoStorageError',
    PAIBaseError, () => user.storage.getStorage('nosuchstorage'));
  await expectOk('kubernetes.getK8sNodes', 'GET', '/api/v2/kubernetes/nodes', 200, () => admin.kubernetes.getK8sNodes(),
    r => [[r.items && r.items.length === 2, 'two nodes']]);
  await expectOk('kubernetes.getK8sPods', 'GET', '/api/v2/kubernetes/pods', 200, () => admin.kubernetes.getK8sPods());
  await expectErr('kubernetes.getK8sNodes by a non-admin', 'GET', '/api/v2/kubernetes/nodes', 403, 'ForbiddenUserError',
    UserErrors.ForbiddenUserError, () => user.kubernetes.getK8sNodes(), false);
}

// ---- jobs ------------------------------------------------------------------------------

function realJob(file) {
  return yaml.safeLoad(fs.readFileSync(path.join(process.env.PAI_JOBS_DIR, file), 'utf8'));
}

// OpenPAI's hello-world job, made runnable on the process runtime: its own
// name, its VC, and commands that print and then sleep (the original clones
// from GitHub).  Everything else is the file as OpenPAI users wrote it.
function runnable(name, commands) {
  const j = realJob('pai__docs_manual_cluster-user_examples_hello-world-job.yaml');
  j.name = name;
  j.defaults = { virtualCluster: RUN_VC };
  j.taskRoles.taskrole.commands = commands;
  j.taskRoles.taskrole.resourcePerInstance.memoryMB = 512;
  return j;
}

const JOB_FILE_EXPECT = {
  // a load-test template: its name and VC are template maps, not strings
  'pai__contrib_api-stress-test_roles_locust_config_files_job.yml': [400, 'InvalidProtocolError'],
  // asks for the VC "cpu", which this cluster does not have
  'pai__examples_tensorflow_cifar10_cifar10_vgg16_tf_cpu.yaml': [400, 'NoVirtualClusterError'],
};

async function testRealJobs() {
  // Every OpenPAI job file, submitted through the SDK as it was written, to
  // the hollow cluster: nothing is executed.
  const admin = new PAIV2.OpenPAIClient({
    rest_server_uri: process.env.PAI_HOLLOW_URL.replace(/^https?:\/\//, ''), https: false,
    username: ADMIN, password: ADMIN_PW,
  });
  const files = fs.readdirSync(process.env.PAI_JOBS_DIR).filter(f => /\.ya?ml$/.test(f)).sort();
  const bad = [];
  let accepted = 0;
  for (const f of files) {
    const want = JOB_FILE_EXPECT[f] || [202, null];
    try {
      await admin.job.createJob(realJob(f));
      if (want[0] !== 202) bad.push(`${f}: accepted, expected ${want.join(' ')}`);
      else accepted++;
    } catch (e) {
      if (e.status !== want[0] || (e.data && e.data.code) !== want[1]) bad.push(`${f}: ${e.status} ${short(e.data)}`);
    }
  }
  L.check(bad.length === 0 && accepted === files.length - Object.keys(JOB_FILE_EXPECT).length,
    `job.createJob: OpenPAI's ${files.length} real job files as written (${accepted} accepted)`, bad.join('\n'));
  const d = await waitJob(admin, ADMIN, 'Resnet18_4gpu', finished);
  L.check(d && d.jobStatus.state === 'SUCCEEDED', 'a real 4-GPU job runs to SUCCEEDED (hollow node)', short(d && d.jobStatus));

  // Every accepted job's detail, attempts and first task as the spec says
  // (multi-role, multi-instance, parameters, secrets, extras...).
  const list = await admin.job.listJobs({ username: ADMIN });
  const probs = { detail: [], attempts: [], task: [], config: [] };
  for (const j of list) {
    const det = await admin.job.getJob(ADMIN, j.name);
    probs.detail.push(...spec.problems('GET', '/api/v2/jobs/{user}~{job}', 200, det).map(x => `${j.name}: ${x}`));
    const atts = await admin.jobHistory.getJobAttempts(ADMIN, j.name);
    probs.attempts.push(...spec.problems('GET', '/api/v2/jobs/{user}~{job}/job-attempts', 200, atts)
      .map(x => `${j.name}: ${x}`));
    const cfg = await admin.job.getJobConfig(ADMIN, j.name);
    if (!cfg || cfg.name !== j.name || cfg.protocolVersion !== 2) probs.config.push(`${j.name}: ${short(cfg)}`);
    const roles = Object.keys(det.taskRoles || {});
    if (det.jobStatus.state !== 'WAITING' && roles.length) {
      const t = await admin.job.getTask(ADMIN, j.name, 0, roles[0], 0);
      probs.task.push(...spec.problems('GET',
        '/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}/taskRoles/{taskRoleName}/taskIndex/{taskIndex}/attempts', 200, t)
        .map(x => `${j.name}: ${x}`));
    }
  }
  L.check(list.length >= 31 && probs.detail.length === 0, `job.getJob of every real job as the spec says (${list.length})`,
    probs.detail.join('\n'));
  L.check(probs.attempts.length === 0, 'jobHistory.getJobAttempts of every real job as the spec says', probs.attempts.join('\n'));
  L.check(probs.task.length === 0, 'job.getTask of every real job as the spec says', probs.task.join('\n'));
  L.check(probs.config.length === 0, 'job.getJobConfig of every real job gives its config back', probs.config.join('\n'));
}

async function testJobs(admin, user) {
  const J = 'sdk_test_job';
  const sub = await expectOk('job.createJob (OpenPAI hello-world job)', 'POST', '/api/v2/jobs', 202,
    () => user.job.createJob(runnable(J, ['echo hello from $PAI_JOB_NAME', 'echo to-stderr >&2', 'sleep 300'])));
  if (!sub) return;
  await expectErr('job.createJob: same name again', 'POST', '/api/v2/jobs', 409, 'ConflictJobError', PAIBaseError,
    () => user.job.createJob(runnable(J, ['true'])));
  await expectErr('job.createJob: no such VC', 'POST', '/api/v2/jobs', 400, 'NoVirtualClusterError', PAIBaseError,
    () => user.job.createJob({ ...runnable('sdk_novc', ['true']), defaults: { virtualCluster: 'nosuchvc' } }));
  const det = await waitJob(user, USER, J, x => x.jobStatus && x.jobStatus.state === 'RUNNING' &&
    x.taskRoles.taskrole.taskStatuses[0].taskState === 'RUNNING' && x.jobStatus.launchedTime);
  await expectOk('job.getJob', 'GET', '/api/v2/jobs/{user}~{job}', 200, () => user.job.getJob(USER, J), r => {
    const ts = (r.taskRoles.taskrole || { taskStatuses: [] }).taskStatuses[0] || {};
    return [
      [r.name === J && r.jobStatus.username === USER && r.jobStatus.virtualCluster === RUN_VC, 'name, user, VC'],
      [r.jobStatus.state === 'RUNNING' && r.jobStatus.executionType === 'START', `state ${r.jobStatus.state}`],
      [ts.taskState === 'RUNNING' && ts.containerNodeName === 'run-n1' && ts.containerIp, `task status ${short(ts)}`],
      [r.jobStatus.appExitCode === null, 'no exit code yet'],
    ];
  });
  L.check(det && det.jobStatus.state === 'RUNNING', 'the job runs on the process node', short(det && det.jobStatus));
  await expectOk('job.getJob with a job attempt id', 'GET', '/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}', 200,
    () => user.job.getJob(USER, J, 0), r => [[r.jobStatus.attemptId === 0, 'attempt 0']]);
  await expectErr('job.getJob: no such job', 'GET', '/api/v2/jobs/{user}~{job}', 404, 'NoJobError', NoJobError,
    () => user.job.getJob(USER, 'sdk_test_nonexist_job'));
  await expectOk('job.getJobConfig', 'GET', '/api/v2/jobs/{user}~{job}/config', 200, () => user.job.getJobConfig(USER, J),
    r => [[r && r.name === J && r.protocolVersion === 2 && r.taskRoles.taskrole.commands.length === 3, 'the submitted config']]);
  // getJobConfig reads text: the SDK cannot pick NoJobError from the body, so PAIBaseError
  await expectErr('job.getJobConfig: no such job', 'GET', '/api/v2/jobs/{user}~{job}/config', 404, 'NoJobError',
    PAIBaseError, () => user.job.getJobConfig(USER, 'sdk_test_nonexist_job'));

  // list with the SDK's query object
  await expectOk('job.listJobs', 'GET', '/api/v2/jobs', 200, () => user.job.listJobs(),
    r => [[Array.isArray(r) && r.some(j => j.name === J), 'an array with the job']]);
  await expectOk('job.listJobs with filters and withTotalCount', 'GET', '/api/v2/jobs', 200, () => user.job.listJobs({
    username: USER, vc: RUN_VC, state: 'RUNNING', keyword: 'sdk_test', offset: 0, limit: 10,
    order: 'submissionTime,DESC', withTotalCount: true,
  }), r => [[r.totalCount === 1 && r.data.length === 1 && r.data[0].name === J, `totalCount ${r.totalCount}`]]);
  await expectOk('job.listJobs: offset past the end', 'GET', '/api/v2/jobs', 200,
    () => user.job.listJobs({ username: USER, offset: 5, limit: 10, withTotalCount: true }),
    r => [[r.totalCount === 1 && r.data.length === 0, `totalCount ${r.totalCount}, ${r.data.length} items`]]);

  await admin.job.createJob(runnable('sdk_admin_job', ['echo admin']));
  await expectOk('job.addTag', 'PUT', '/api/v2/jobs/{user}~{job}/tag', 200, () => user.job.addTag(USER, J, 'testTag'));
  await expectOk('job.listJobs tagsContain', 'GET', '/api/v2/jobs', 200,
    () => user.job.listJobs({ tagsContain: 'testTag', withTotalCount: true }),
    r => [[r.totalCount === 1 && r.data[0].tags.includes('testTag'), `totalCount ${r.totalCount}`]]);
  await expectOk('job.deleteTag', 'DELETE', '/api/v2/jobs/{user}~{job}/tag', 200, () => user.job.deleteTag(USER, J, 'testTag'));
  await expectErr('job.deleteTag: no such tag', 'DELETE', '/api/v2/jobs/{user}~{job}/tag', 404, 'NoTagError',
    PAIBaseError, () => user.job.deleteTag(USER, J, 'testTag'), false);
  await expectErr('job.addTag by another user', 'PUT', '/api/v2/jobs/{user}~{job}/tag', 403, 'ForbiddenUserError',
    UserErrors.ForbiddenUserError, () => user.job.addTag(ADMIN, 'sdk_admin_job', 'x'), false);

  await expectOk('job.listEvents', 'GET', '/api/v2/jobs/{user}~{job}/events', 200, () => user.job.listEvents(USER, J),
    r => [[r.totalCount >= 1 && r.data.some(e => e.reason === 'Scheduled'), 'a Scheduled event']]);
  await expectOk('jobHistory.getJobAttemptsHealthz', 'GET', '/api/v2/jobs/{user}~{job}/job-attempts/healthz', 200,
    () => user.jobHistory.getJobAttemptsHealthz(USER, J));
  await expectOk('jobHistory.getJobAttempts', 'GET', '/api/v2/jobs/{user}~{job}/job-attempts', 200,
    () => user.jobHistory.getJobAttempts(USER, J), r => [[r.length === 1 && r[0].attemptIndex === 0, 'one attempt']]);
  await expectOk('jobHistory.getJobAttempt', 'GET', '/api/v2/jobs/{user}~{job}/job-attempts/{attemptIndex}', 200,
    () => user.jobHistory.getJobAttempt(USER, J, 0), r => [[r.attemptIndex === 0 && r.taskRoles.taskrole, 'attempt 0']]);
  await expectOk('job.getTask', 'GET',
    '/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}/taskRoles/{taskRoleName}/taskIndex/{taskIndex}/attempts', 200,
    () => user.job.getTask(USER, J, 0, 'taskrole', 0), r => [[r.taskIndex === 0 && Array.isArray(r.attempts) && r.attempts.length === 1, 'one task attempt']]);
  const LOGS = '/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}/taskRoles/{taskRoleName}/taskIndex/{taskIndex}/attempts/{taskAttemptId}/logs';
  const logs = await expectOk('job.getTaskLogs', 'GET', LOGS, 200, () => user.job.getTaskLogs(USER, J, 0, 'taskrole', 0, 0),
    r => [[r.locations.some(l => l.name === 'stdout') && r.locations.some(l => l.name === 'stderr'), 'stdout and stderr']]);
  await expectOk('job.getTaskLogs (tailMode)', 'GET', LOGS, 200, () => user.job.getTaskLogs(USER, J, 0, 'taskrole', 0, 0, true));
  if (logs) {
    // the locations are URLs a client fetches with its token
    const stdout = logs.locations.find(l => l.name === 'stdout');
    let text = '';
    for (let i = 0; i < 50 && !text.includes('hello from'); i++) {
      const r = await fetch(new URL(stdout.uri, URL_), { headers: { Authorization: `Bearer ${user.job.cluster.token}` } });
      text = await r.text();
      if (!text.includes('hello from')) await sleep(100);
    }
    // PAI_JOB_NAME is user~job, as in OpenPAI
    L.check(text.includes(`hello from ${USER}~${J}`), 'the stdout location serves the task\'s output', text.slice(0, 200));
  }

  await expectOk('job.updateJobExecutionType STOP', 'PUT', '/api/v2/jobs/{user}~{job}/executionType', 202,
    () => user.job.updateJobExecutionType(USER, J, 'STOP'));
  const stopped = await waitJob(user, USER, J, finished);
  L.check(stopped && stopped.jobStatus.state === 'STOPPED' && stopped.jobStatus.executionType === 'STOP',
    'the stopped job ends STOPPED', short(stopped && stopped.jobStatus));
  await expectErr('job.updateJobExecutionType by another user', 'PUT', '/api/v2/jobs/{user}~{job}/executionType', 403,
    'ForbiddenUserError', UserErrors.ForbiddenUserError, () => user.job.updateJobExecutionType(ADMIN, 'sdk_admin_job', 'STOP'),
    false);
  await expectErr('job.updateJobExecutionType: no such job', 'PUT', '/api/v2/jobs/{user}~{job}/executionType', 404,
    'NoJobError', NoJobError, () => user.job.updateJobExecutionType(USER, 'sdk_test_nonexist_job', 'STOP'));

  // createRunningJob polls getJob with the client's user name until the job leaves WAITING
  const ok = await expectOk('job.createRunningJob (exit 3)', 'GET', '/api/v2/jobs/{user}~{job}', 200,
    () => user.job.createRunningJob(runnable('sdk_fail_job', ['echo failing', 'exit 3'])));
  const failedJob = await waitJob(user, USER, 'sdk_fail_job', finished);
  const fts = failedJob && failedJob.taskRoles.taskrole.taskStatuses[0];
  L.check(ok && failedJob.jobStatus.state === 'FAILED' && failedJob.jobStatus.appExitCode === 3 &&
    fts.containerExitCode === 3 && fts.taskState === 'FAILED',
  'a job whose command exits 3 is FAILED with appExitCode 3', short(failedJob && [failedJob.jobStatus, fts]));
  await expectOk('job.createJob (succeeds)', 'POST', '/api/v2/jobs', 202,
    () => user.job.createJob(runnable('sdk_ok_job', ['echo fine'])));
  const good = await waitJob(user, USER, 'sdk_ok_job', finished);
  L.check(good && good.jobStatus.state === 'SUCCEEDED' && good.jobStatus.appExitCode === 0,
    'a job whose command exits 0 is SUCCEEDED', short(good && good.jobStatus));
  // an application token does job operations for its user
  const tok = await user.token.createApplicationToken();
  const appc = client({ token: tok.token, username: USER });
  await expectOk('job.createJob with an application token', 'POST', '/api/v2/jobs', 202,
    () => appc.job.createJob(runnable('sdk_app_job', ['sleep 60'])));
  await expectOk('job.getJob with an application token', 'GET', '/api/v2/jobs/{user}~{job}', 200,
    () => appc.job.getJob(USER, 'sdk_app_job'), r => [[r.jobStatus.username === USER, 'the token\'s user owns the job']]);
  await expectOk('job.updateJobExecutionType STOP with an application token', 'PUT',
    '/api/v2/jobs/{user}~{job}/executionType', 202, () => appc.job.updateJobExecutionType(USER, 'sdk_app_job', 'STOP'));
  await expectErr('user.getUser with an application token', 'GET', '/api/v2/users/{user}', 403, 'ForbiddenUserError',
    UserErrors.ForbiddenUserError, () => appc.user.getUser(USER), false);
  await user.token.deleteToken(tok.token);
  await expectOk('job.listJobs state filter', 'GET', '/api/v2/jobs', 200,
    () => user.job.listJobs({ username: USER, state: 'FAILED,SUCCEEDED', withTotalCount: true }),
    r => [[r.totalCount === 2, `totalCount ${r.totalCount}`]]);
}

async function main() {
  const admin = client({ username: ADMIN, password: ADMIN_PW });
  await testAuth(admin);
  const user = await testUsers(admin);
  await testCluster(admin, user);
  await testRealJobs();
  await testJobs(admin, user);
  return L.summary();
}

main().then(f => process.exit(f ? 1 : 0), e => {
  L.notOk('sdk_test.js crashed', e && e.stack);
  process.exit(1);
});
