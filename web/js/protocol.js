// protocol.js - the job protocol v2 document behind the submit form.
//
// The form and the YAML editor edit one plain object (the protocol document
// as js-yaml parses it). Fields the form does not know are kept untouched, so
// a YAML file imported, edited in the form and exported loses nothing.
// validate() mirrors the checks of the protocol schema so errors show next to
// the field before the server sees the job.

export const PRIORITIES = ['', 'crit', 'prod', 'test', 'oppo'];
const NAME_RE = /^[a-zA-Z0-9_-]+$/;
const ROLE_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function yamlLib() {
  if (!window.jsyaml) throw new Error('YAML library not loaded');
  return window.jsyaml;
}

export function toYaml(doc) {
  return yamlLib().dump(doc, { lineWidth: 120, noRefs: true });
}

// Parses YAML text into a protocol object; throws with line info on error.
export function fromYaml(text) {
  const doc = yamlLib().load(text);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('a job is a YAML mapping (name, taskRoles, ...)');
  return doc;
}

const rand = () => Math.random().toString(16).slice(2, 10);

export function newJob(user, vc) {
  return {
    protocolVersion: 2,
    name: `${user || 'job'}_${rand()}`,
    type: 'job',
    jobRetryCount: 0,
    prerequisites: [{ type: 'dockerimage', name: 'docker_image_0', uri: 'ubuntu:22.04' }],
    taskRoles: { taskrole: newRole('docker_image_0') },
    defaults: { virtualCluster: vc || 'default' },
  };
}

export function newRole(image) {
  return {
    instances: 1,
    completion: { minFailedInstances: 1 },
    taskRetryCount: 0,
    dockerImage: image,
    resourcePerInstance: { cpu: 1, memoryMB: 1024, gpu: 1 },
    commands: ['echo hello'],
  };
}

// A clone of a past job: same content, a fresh name.
export function cloneJob(doc) {
  const copy = structuredClone(doc);
  const base = String(copy.name || 'job').replace(/_clone_[0-9a-f]+$/, '');
  copy.name = `${base}_clone_${rand()}`.slice(0, 200);
  return copy;
}

export function roleNames(doc) {
  return Object.keys(doc.taskRoles || {});
}

function prereq(doc, name) {
  return (doc.prerequisites || []).find((p) => p && p.name === name);
}

export function imageOf(doc, role) {
  const r = doc.taskRoles?.[role];
  return r ? prereq(doc, r.dockerImage)?.uri ?? '' : '';
}

// Sets a role's image URI, giving the role its own prerequisite when the
// current one is shared with another role.
export function setImage(doc, role, uri) {
  const r = doc.taskRoles[role];
  doc.prerequisites ||= [];
  const shared = roleNames(doc).some((n) => n !== role && doc.taskRoles[n].dockerImage === r.dockerImage);
  let p = prereq(doc, r.dockerImage);
  if (!p || shared) {
    let name = `docker_image_${role}`;
    for (let i = 1; prereq(doc, name); i++) name = `docker_image_${role}_${i}`;
    p = { type: 'dockerimage', name, uri };
    doc.prerequisites.push(p);
    r.dockerImage = name;
  }
  p.uri = uri;
}

export function addRole(doc) {
  let name = 'worker';
  for (let i = 1; doc.taskRoles?.[name]; i++) name = `worker${i}`;
  const first = roleNames(doc)[0];
  doc.taskRoles ||= {};
  doc.taskRoles[name] = newRole(first ? doc.taskRoles[first].dockerImage : 'docker_image_0');
  if (!first && !prereq(doc, 'docker_image_0')) {
    (doc.prerequisites ||= []).push({ type: 'dockerimage', name: 'docker_image_0', uri: 'ubuntu:22.04' });
  }
  return name;
}

// Renames a role keeping its position in the mapping.
export function renameRole(doc, from, to) {
  if (from === to || !doc.taskRoles?.[from] || doc.taskRoles[to]) return false;
  const next = {};
  for (const [k, v] of Object.entries(doc.taskRoles)) next[k === from ? to : k] = v;
  doc.taskRoles = next;
  return true;
}

export function removeRole(doc, name) {
  delete doc.taskRoles[name];
}

// "ssh:1, http:2" <-> {ssh: 1, http: 2}
export function portsToText(ports) {
  return Object.entries(ports || {}).map(([k, v]) => `${k}:${v}`).join(', ');
}

export function parsePorts(text) {
  const out = {};
  for (const part of String(text).split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*:\s*(\d+)$/.exec(part);
    if (!m) return null;
    out[m[1]] = Number(m[2]);
  }
  return out;
}

// "key=value" lines <-> {key: value}
export function mapToText(m) {
  return Object.entries(m || {}).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n');
}

export function parseMap(text) {
  const out = {};
  for (const line of String(text).split('\n')) {
    if (!line.trim()) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return null;
    out[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return out;
}

const isInt = (v) => Number.isInteger(v);

// Returns [{path, message}]. Paths name form fields: "name",
// "defaults.virtualCluster", "taskRoles.<role>.instances", ...
export function validate(doc) {
  const errs = [];
  const err = (path, message) => errs.push({ path, message });
  if (!doc.name || !NAME_RE.test(String(doc.name))) err('name', 'Name is required: letters, digits, _ and - only.');
  else if (String(doc.name).length > 255) err('name', 'Name is longer than 255 characters.');
  if (doc.protocolVersion !== undefined && String(doc.protocolVersion) !== '2') err('protocolVersion', 'protocolVersion must be 2.');
  if (doc.jobRetryCount !== undefined && (!isInt(doc.jobRetryCount) || doc.jobRetryCount < 0)) err('jobRetryCount', 'Retries must be a whole number, 0 or more.');
  if (!doc.defaults?.virtualCluster) err('defaults.virtualCluster', 'Choose a virtual cluster.');
  const pc = doc.extras?.hivedScheduler?.jobPriorityClass;
  if (pc !== undefined && !PRIORITIES.includes(pc)) err('priority', `Priority must be one of ${PRIORITIES.filter(Boolean).join(', ')}.`);
  const roles = roleNames(doc);
  if (roles.length === 0) err('taskRoles', 'A job needs at least one task role.');
  for (const r of roles) validateRole(doc, r, err);
  return errs;
}

function validateRole(doc, r, err) {
  const role = doc.taskRoles[r] || {};
  const p = `taskRoles.${r}`;
  if (!ROLE_RE.test(r)) err(`${p}.name`, 'Role names start with a letter or _ and use letters, digits and _.');
  if (!isInt(role.instances) || role.instances < 1) err(`${p}.instances`, 'Instances must be a whole number, 1 or more.');
  if (!imageOf(doc, r)) err(`${p}.image`, 'An image is required.');
  const res = role.resourcePerInstance || {};
  if (!isInt(res.gpu) || res.gpu < 0) err(`${p}.gpu`, 'GPUs must be a whole number, 0 or more.');
  if (!isInt(res.cpu) || res.cpu < 1) err(`${p}.cpu`, 'CPUs must be a whole number, 1 or more.');
  if (!isInt(res.memoryMB) || res.memoryMB < 1) err(`${p}.memoryMB`, 'Memory (MB) must be a whole number, 1 or more.');
  if (res.ports !== undefined && (typeof res.ports !== 'object' || Object.values(res.ports).some((v) => !isInt(v) || v < 0))) err(`${p}.ports`, 'Ports look like "ssh:1, http:1".');
  if (!Array.isArray(role.commands) || role.commands.filter((c) => String(c).trim()).length === 0) err(`${p}.commands`, 'At least one command is required.');
  if (role.taskRetryCount !== undefined && (!isInt(role.taskRetryCount) || role.taskRetryCount < 0)) err(`${p}.taskRetryCount`, 'Retries must be a whole number, 0 or more.');
  const c = role.completion || {};
  for (const k of ['minFailedInstances', 'minSucceededInstances']) {
    const v = c[k];
    if (v === undefined || v === null) continue;
    if (!isInt(v) || (v !== -1 && v < 1)) err(`${p}.${k}`, 'Must be -1 or a whole number, 1 or more.');
    else if (isInt(role.instances) && role.instances >= 1 && v > role.instances) err(`${p}.${k}`, `Must not exceed the ${role.instances} instance(s).`);
  }
}
