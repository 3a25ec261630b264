// api.js - the portal's only way to the server: the public REST API v2.
//
// The session (token, user name, admin flag) lives in cookies named token,
// user and admin, as OpenPAI's web portal keeps them; every request sends the
// token as "Authorization: Bearer". The server never reads the cookies (so a
// forged cross-site request carries no credentials). A 401 ends the session.
//
// Every endpoint the portal calls is a function below; pai's extensions to
// OpenPAI's API (docs/api.md) are marked "pai extension".

const COOKIE_DAYS = 7;

function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1));
  }
  return '';
}

function writeCookie(name, value, maxAgeSec) {
  document.cookie = `${name}=${encodeURIComponent(value)}; path=/; max-age=${maxAgeSec}; SameSite=Strict`;
}

export const session = {
  get token() { return readCookie('token'); },
  get user() { return readCookie('user'); },
  get admin() { return readCookie('admin') === 'true'; },
  get loggedIn() { return this.token !== '' && this.user !== ''; },
  set(token, user, admin) {
    const age = COOKIE_DAYS * 86400;
    writeCookie('token', token, age);
    writeCookie('user', user, age);
    writeCookie('admin', admin ? 'true' : 'false', age);
  },
  clear() {
    for (const n of ['token', 'user', 'admin']) writeCookie(n, '', 0);
  },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

// Called on 401 (set by app.js): forget the session and go to the login page.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

function queryString(query) {
  if (!query) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

// request(method, path, {query, json, yaml, form, text}) -> parsed JSON, or
// text when the answer is not JSON. Throws ApiError on a non-2xx answer.
export async function request(method, path, opts = {}) {
  const headers = {};
  let body;
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.yaml !== undefined) {
    headers['Content-Type'] = 'text/yaml';
    body = opts.yaml;
  } else if (opts.form !== undefined) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  }
  const res = await fetch(path + queryString(opts.query), { method, headers, body, cache: 'no-store' });
  const type = res.headers.get('Content-Type') || '';
  const payload = type.includes('json') ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const err = payload && typeof payload === 'object'
      ? new ApiError(res.status, payload.code, payload.message)
      : new ApiError(res.status, '', typeof payload === 'string' && payload.length < 300 ? payload : '');
    if (res.status === 401 && !opts.noAuthRedirect) onUnauthorized(err);
    throw err;
  }
  return payload;
}

const enc = encodeURIComponent;
const jobPath = (user, name) => `/api/v2/jobs/${enc(user)}~${enc(name)}`;
const templatePath = (id) => {
  const t = id.indexOf('~');
  return `/api/v2/templates/${enc(id.slice(0, t))}~${enc(id.slice(t + 1))}`;
};

export const api = {
  info: () => request('GET', '/api/v2/info'),

  // Sessions and tokens.
  login: (username, password) =>
    request('POST', '/api/v2/authn/basic/login', { form: { username, password }, noAuthRedirect: true }),
  logout: () => request('DELETE', '/api/v2/authn/basic/logout', { noAuthRedirect: true }),
  tokens: () => request('GET', '/api/v2/tokens'),
  createAppToken: () => request('POST', '/api/v2/tokens/application'),
  revokeToken: (token) => request('DELETE', `/api/v2/tokens/${enc(token)}`),

  // Users and groups.
  users: () => request('GET', '/api/v2/users'),
  user: (name) => request('GET', `/api/v2/users/${enc(name)}`),
  createUser: (u) => request('POST', '/api/v2/users', { json: u }),
  updateUser: (data) => request('PUT', '/api/v2/users', { json: { data, patch: true } }),
  deleteUser: (name) => request('DELETE', `/api/v2/users/${enc(name)}`),
  setUserGroups: (name, grouplist) =>
    request('PUT', `/api/v2/users/${enc(name)}/grouplist/`, { json: { grouplist } }),
  updateMe: (data) => request('PUT', '/api/v2/users/me', { json: { data, patch: true } }),
  groups: () => request('GET', '/api/v2/groups'),
  createGroup: (g) => request('POST', '/api/v2/groups', { json: g }),
  updateGroup: (data) => request('PUT', '/api/v2/groups', { json: { data, patch: true } }),
  deleteGroup: (name) => request('DELETE', `/api/v2/groups/${enc(name)}`),

  // Virtual clusters (create, resize and delete are pai extensions; the body
  // of putVc is {virtualCells: [{cellType, cellNumber}]}).
  vcs: () => request('GET', '/api/v2/virtual-clusters'),
  vc: (name) => request('GET', `/api/v2/virtual-clusters/${enc(name)}`),
  putVc: (name, body) => request('PUT', `/api/v2/virtual-clusters/${enc(name)}`, { json: body }),
  deleteVc: (name) => request('DELETE', `/api/v2/virtual-clusters/${enc(name)}`),

  // Nodes (pai extension, Kubernetes NodeList shape; OpenPAI proxied Kubernetes).
  nodes: () => request('GET', '/api/v2/cluster/nodes'),

  // Jobs.
  jobs: (query) => request('GET', '/api/v2/jobs', { query: { withTotalCount: 'true', ...query } }),
  job: (user, name) => request('GET', jobPath(user, name)),
  jobConfig: (user, name) => request('GET', `${jobPath(user, name)}/config`),
  jobSsh: (user, name) => request('GET', `${jobPath(user, name)}/ssh`), // docs/ssh.md
  jobEvents: (user, name) => request('GET', `${jobPath(user, name)}/events`),
  jobAttempts: (user, name) => request('GET', `${jobPath(user, name)}/job-attempts`),
  jobAttempt: (user, name, attempt) => request('GET', `${jobPath(user, name)}/attempts/${enc(attempt)}`),
  submitJob: (yamlText) => request('POST', '/api/v2/jobs', { yaml: yamlText }),
  stopJob: (user, name) => request('PUT', `${jobPath(user, name)}/executionType`, { json: { value: 'STOP' } }),
  deleteJob: (user, name) => request('DELETE', jobPath(user, name)), // pai extension
  addTag: (user, name, value) => request('PUT', `${jobPath(user, name)}/tag`, { json: { value } }),
  removeTag: (user, name, value) => request('DELETE', `${jobPath(user, name)}/tag`, { json: { value } }),
  taskAttempts: (user, name, attempt, role, index) =>
    request('GET', `${jobPath(user, name)}/attempts/${enc(attempt)}/taskRoles/${enc(role)}/taskIndex/${enc(index)}/attempts`),
  taskLogs: (user, name, attempt, role, index, taskAttempt, tail) =>
    request('GET', `${jobPath(user, name)}/attempts/${enc(attempt)}/taskRoles/${enc(role)}/taskIndex/${enc(index)}/attempts/${enc(taskAttempt)}/logs`,
      { query: { tailMode: tail ? 'true' : '' } }),
  // A log location's content: the uri from taskLogs (same origin, may carry
  // its own query such as tailMode=true).
  logContent: (uri) => {
    const u = new URL(uri, location.origin);
    if (u.origin !== location.origin) return Promise.reject(new Error('log is on another server'));
    return request('GET', u.pathname + u.search);
  },

  // Job templates (pai extension, docs/api.md "Templates"); id is "owner~name".
  templates: (query) => request('GET', '/api/v2/templates', { query }),
  template: (id) => request('GET', templatePath(id)),
  publishTemplate: (body) => request('POST', '/api/v2/templates', { json: body }),
  updateTemplate: (id, body) => request('PUT', templatePath(id), { json: body }),
  deleteTemplate: (id) => request('DELETE', templatePath(id)),
  featureTemplate: (id, value) => request('PUT', `${templatePath(id)}/featured`, { json: { value } }),
  submitFromTemplate: (id, body) => request('POST', `${templatePath(id)}/submit`, { json: body }),

  // GPU-hours held versus used (pai extension, docs/api.md "Usage").
  usage: (query) => request('GET', '/api/v2/usage', { query }),

  // Metrics: the Prometheus text exposition the server publishes.
  metricsText: () => request('GET', '/metrics'),
  // The server's in-memory metrics history (docs/api.md, "Metrics history").
  clusterHistory: (minutes, maxPoints) =>
    request('GET', '/api/v2/cluster/metrics-history', { query: { minutes, maxPoints } }),
  jobHistory: (user, name, minutes, maxPoints) =>
    request('GET', `${jobPath(user, name)}/metrics-history`, { query: { minutes, maxPoints } }),
};

// The job list answer is {totalCount, data} with withTotalCount=true, or an
// array from a server that ignores the flag.
export function jobList(answer) {
  if (Array.isArray(answer)) return { total: answer.length, jobs: answer };
  return { total: answer?.totalCount ?? 0, jobs: answer?.data ?? [] };
}
