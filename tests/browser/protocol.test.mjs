// protocol.test.mjs - the submit form's job model (web/js/protocol.js) in
// Node, without a browser: validation, roles, images, ports and maps, and
// every real OpenPAI job of tests/data/openpai-jobs imported and
// exported through the form's model without losing anything.
//   node tests/browser/protocol.test.mjs [JOBS_DIR]
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
globalThis.window = { jsyaml: require(path.join(here, '..', '..', 'web', 'vendor', 'js-yaml.min.js')) };
const P = await import(path.join(here, '..', '..', 'web', 'js', 'protocol.js'));

let passed = 0, failed = 0;
function test(name, fn) {
  try { fn(); console.log(`ok - ${name}`); passed++; } catch (e) {
    console.log(`not ok - ${name}`); console.log(`  ${String(e.message).split('\n').slice(0, 8).join('\n  ')}`); failed++;
  }
}
const paths = (doc) => P.validate(doc).map((e) => e.path);

test('a new job is valid', () => {
  assert.deepEqual(P.validate(P.newJob('alice', 'default')), []);
});

test('errors name the field they belong to', () => {
  const d = P.newJob('alice', '');
  d.defaults.virtualCluster = '';
  d.name = 'bad name';
  d.taskRoles.taskrole.instances = 0;
  d.taskRoles.taskrole.resourcePerInstance.gpu = -1;
  d.taskRoles.taskrole.commands = ['  '];
  d.prerequisites[0].uri = '';
  assert.deepEqual(paths(d).sort(), ['defaults.virtualCluster', 'name', 'taskRoles.taskrole.commands',
    'taskRoles.taskrole.gpu', 'taskRoles.taskrole.image', 'taskRoles.taskrole.instances'].sort());
});

test('completion counts above the instances or below -1 are refused', () => {
  const d = P.newJob('a', 'default');
  d.taskRoles.taskrole.completion = { minFailedInstances: 2, minSucceededInstances: -2 };
  assert.deepEqual(paths(d).sort(), ['taskRoles.taskrole.minFailedInstances', 'taskRoles.taskrole.minSucceededInstances']);
  d.taskRoles.taskrole.completion = { minFailedInstances: -1, minSucceededInstances: 1 };
  assert.deepEqual(paths(d), []);
});

test('an unknown priority and a bad role name are refused', () => {
  const d = P.newJob('a', 'default');
  d.extras = { hivedScheduler: { jobPriorityClass: 'urgent' } };
  P.renameRole(d, 'taskrole', '1bad');
  assert.deepEqual(paths(d).sort(), ['priority', 'taskRoles.1bad.name']);
});

test('adding and renaming roles keeps order and images', () => {
  const d = P.newJob('a', 'default');
  const w = P.addRole(d);
  assert.equal(w, 'worker');
  assert.equal(P.imageOf(d, 'worker'), 'ubuntu:22.04');
  assert.ok(P.renameRole(d, 'taskrole', 'master'));
  assert.deepEqual(P.roleNames(d), ['master', 'worker']);
  assert.ok(!P.renameRole(d, 'master', 'worker'), 'renaming onto an existing role is refused');
});

test('changing a shared image gives the role its own prerequisite', () => {
  const d = P.newJob('a', 'default');
  P.addRole(d);
  P.setImage(d, 'worker', 'pytorch:2');
  assert.equal(P.imageOf(d, 'worker'), 'pytorch:2');
  assert.equal(P.imageOf(d, 'taskrole'), 'ubuntu:22.04');
  P.removeRole(d, 'taskrole');
  P.setImage(d, 'worker', 'pytorch:3');
  assert.equal(d.prerequisites.filter((p) => p.uri === 'pytorch:3').length, 1);
});

test('ports and name=value maps parse and print', () => {
  assert.deepEqual(P.parsePorts('ssh:1, http:2'), { ssh: 1, http: 2 });
  assert.equal(P.parsePorts('ssh'), null);
  assert.equal(P.portsToText({ ssh: 1, http: 2 }), 'ssh:1, http:2');
  assert.deepEqual(P.parseMap('a=1\nb=x=y\n'), { a: '1', b: 'x=y' });
  assert.equal(P.parseMap('novalue'), null);
});

test('a clone gets a new name and keeps everything else', () => {
  const d = P.newJob('a', 'default');
  d.name = 'train';
  const c = P.cloneJob(d);
  assert.match(c.name, /^train_clone_[0-9a-f]+$/);
  assert.match(P.cloneJob(c).name, /^train_clone_[0-9a-f]+$/, 'cloning a clone does not stack suffixes');
  assert.deepEqual({ ...c, name: d.name }, d);
});

test('YAML errors are thrown with a line', () => {
  assert.throws(() => P.fromYaml('name: [unclosed'), /\(\d+:\d+\)/);
  assert.throws(() => P.fromYaml('- a list'), /mapping/);
});

const jobsDir = process.argv[2] || path.join(here, '..', 'data', 'openpai-jobs');
const files = fs.existsSync(jobsDir) ? fs.readdirSync(jobsDir).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
test(`the OpenPAI job corpus is there (${files.length} files)`, () => assert.ok(files.length >= 30, `found ${files.length} in ${jobsDir}`));
for (const f of files) {
  test(`corpus ${f}: import, export and import again loses nothing; the form finds no error`, () => {
    const doc = P.fromYaml(fs.readFileSync(path.join(jobsDir, f), 'utf8'));
    const again = P.fromYaml(P.toYaml(doc));
    assert.deepEqual(again, doc);
    // Allowed: no VC (the form asks for one), and a template's unfilled
    // name ("name: {{jobname}}" parses as a mapping, not a name).
    const errs = P.validate(doc).filter((e) => e.path !== 'defaults.virtualCluster' &&
      !(e.path === 'name' && typeof doc.name !== 'string'));
    assert.deepEqual(errs, []);
  });
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
