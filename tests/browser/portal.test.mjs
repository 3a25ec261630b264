// portal.test.mjs - the portal in headless Chromium against a running cluster.
//
//   PORTAL_URL=http://127.0.0.1:PORT ADMIN_USER=admin ADMIN_PASSWORD=... \
//   OUT=dir node tests/browser/portal.test.mjs
//
// Drives Debian's /usr/bin/chromium (CHROMIUM to override) with
// playwright-core. Prints "ok - name" / "not ok - name" per step, saves a
// screenshot of every page under $OUT, and fails any step that logged a
// console error or an uncaught page error. Steps run in order; a failed step
// does not stop the ones after it (each starts from a fresh navigation).
import fs from 'node:fs';
import {
  ADMIN, ADMIN_PW, RUN, WAIT_MS, expectText, finish, go, login, logout, page, shot, step, tolerate,
  waitState,
} from './harness.mjs';

async function openJob(user, name) {
  await go(`#/job/${encodeURIComponent(user)}~${encodeURIComponent(name)}`);
  await page.locator('main h1').filter({ hasText: name }).waitFor();
}
async function setYaml(text) {
  await page.fill('#yaml-editor', text);
  await page.waitForTimeout(700); // the editor parses 400 ms after the last key
}

const formJob = `form_${RUN}`;
const yamlJob = `yaml_${RUN}`;
const longJob = `long_${RUN}`;
const userName = `alice_${RUN}`;
const userPw = 'alice-secret-1';
const vcName = `vc_${RUN}`;
const CELL_TYPE = process.env.CELL_TYPE || 'SIM-GPU-NODE';
const yamlText = (name, cmd, instances = 2) => `protocolVersion: 2
name: ${name}
type: job
jobRetryCount: 0
prerequisites:
  - type: dockerimage
    name: img
    uri: ubuntu:22.04
defaults:
  virtualCluster: default
taskRoles:
  master:
    instances: 1
    dockerImage: img
    resourcePerInstance: {cpu: 1, memoryMB: 512, gpu: 1}
    commands:
      - ${cmd}
  worker:
    instances: ${instances}
    completion:
      minFailedInstances: 1
    dockerImage: img
    resourcePerInstance: {cpu: 1, memoryMB: 512, gpu: 1}
    commands:
      - ${cmd}
`;

await step('login page rejects a wrong password with a message', async () => {
  tolerate(/Failed to load resource/); // the 400 answer is logged by Chromium
  await go('#/login');
  await shot('01-login');
  await page.fill('input[name=username]', ADMIN);
  await page.fill('input[name=password]', 'definitely-wrong');
  await page.click('form.login button[type=submit]');
  await expectText('form.login .form-error', /wrong|failed/i);
});

await step('admin logs in with the keyboard only', async () => {
  await go('#/login');
  await page.keyboard.press('Tab'); // skip link or first field
  await page.focus('input[name=username]');
  await page.keyboard.type(ADMIN);
  await page.keyboard.press('Tab');
  await page.keyboard.type(ADMIN_PW);
  await page.keyboard.press('Enter');
  await page.locator('#logout').waitFor();
  await page.locator('main h1').filter({ hasText: 'Dashboard' }).waitFor();
});

await step('dashboard shows job counts, GPU use and nodes', async () => {
  await go('#/');
  await page.locator('.counts .count').first().waitFor();
  await page.locator('#d-gpu + div .kv').first().waitFor();
  await shot('02-dashboard');
});

await step('the keyboard reaches the skip link, the menu and log out', async () => {
  await go('#/');
  await page.locator('.counts .count').first().waitFor();
  const seen = [];
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => (document.activeElement?.textContent || '').trim()));
  }
  for (const want of ['Skip to content', 'Dashboard', 'Submit', 'Jobs', 'Cluster', 'Admin', 'Profile', 'Log out']) {
    if (!seen.includes(want)) throw new Error(`Tab never reached "${want}" (saw ${JSON.stringify(seen)})`);
  }
  // The skip link moves focus into the page and stays on the page.
  await go('#/cluster');
  await page.locator('main h1').waitFor();
  await page.focus('a.skip');
  await page.keyboard.press('Enter');
  const where = await page.evaluate(() => [document.getElementById('main').contains(document.activeElement), location.hash]);
  if (!where[0] || where[1] !== '#/cluster') throw new Error(`the skip link went to ${where[1]}, focus in page: ${where[0]}`);
  // A page's controls are reached too (the jobs page's state filter).
  await go('#/jobs');
  await page.locator('table.jobs, p.empty').first().waitFor();
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.name === 'state');
  }
  if (!reached) throw new Error('Tab never reached the state filter');
});

await step('admin creates a user', async () => {
  await go('#/admin/users');
  await page.fill('input[name=new-username]', userName);
  await page.fill('input[name=new-password]', userPw);
  await page.fill('input[name=new-vcs]', 'default');
  await page.click('form:has(#u-new) button[type=submit]');
  await page.locator(`tr[data-user="${userName}"]`).waitFor();
  await shot('03-admin-users');
});

await step('admin edits a user', async () => {
  await go('#/admin/users');
  await page.locator(`tr[data-user="${userName}"] button:has-text("Edit")`).click();
  await page.fill('tr.editor input[type=email]', `${userName}@example.com`);
  await page.click('tr.editor button[type=submit]');
  await expectText('.toast', /Saved/);
  await expectText(`tr[data-user="${userName}"]`, new RegExp(`${userName}@example.com`));
});

await step('admin creates a group with ACLs', async () => {
  await go('#/admin/groups');
  await page.fill('input[name=groupname]', `grp_${RUN}`);
  await page.fill('input[name=description]', 'portal test group');
  await page.fill('input[name=acl-vcs]', 'default');
  await page.click('form:has(input[name=groupname]) button[type=submit]');
  await page.locator(`tr[data-group="grp_${RUN}"]`).waitFor();
  await shot('04-admin-groups');
});

// The cluster has NODES node cells; the VC default may own them all (pai up's
// generated config), so the admin shrinks it to free one, creates a VC on
// it, deletes that VC and gives the cell back to default.
const NODES = Number(process.env.NODES || 2);
const resizeVc = async (vc, cells) => {
  const row = page.locator(`tr[data-vc="${vc}"]`);
  await row.locator(`input[aria-label="Cells of ${vc}"]`).fill(String(cells));
  await row.locator('button:has-text("Resize")').click();
  await expectText('.toast', new RegExp(`Resized ${vc} to ${cells} cell`));
  await page.locator(`tr[data-vc="${vc}"]`).waitFor();
};

await step('admin resizes, creates and deletes a virtual cluster', async () => {
  await go('#/admin/vcs');
  await page.fill('input[name=vc-cell-type]', CELL_TYPE);
  tolerate(/Failed to load resource.*(400|501)/);
  await page.locator('tr[data-vc="default"]').waitFor();
  await resizeVc('default', NODES - 1);
  await page.fill('input[name=vc-name]', vcName);
  await page.fill('input[name=vc-cell-type]', CELL_TYPE);
  await page.fill('input[name=vc-cells]', '1');
  await page.click('form:has(input[name=vc-name]) button[type=submit]');
  const row = page.locator(`tr[data-vc="${vcName}"]`);
  await row.waitFor();
  await expectText(`tr[data-vc="${vcName}"]`, /\d+ \/ 4 \/ \d+/);
  await shot('05-admin-vcs');
  await row.locator('button:has-text("Delete")').click();
  await page.click('dialog button[value=ok]');
  await expectText('.toast', /Deleted/);
  await row.waitFor({ state: 'detached' });
  await page.fill('input[name=vc-cell-type]', CELL_TYPE);
  await resizeVc('default', NODES);
  await expectText('tr[data-vc="default"]', new RegExp(`\\d+ / ${4 * NODES} / \\d+`));
});

await step('submit form shows validation errors next to the field', async () => {
  await go('#/submit');
  await page.locator('#job-form fieldset.role').first().waitFor();
  await page.fill('input[name="name"]', 'bad name!');
  await page.fill('input[name="taskRoles.taskrole.image"]', '');
  await page.click('#job-form button[type=submit]');
  await expectText('#' + (await page.getAttribute('input[name="name"]', 'id')) + '-err', /letters/i);
  await expectText('#' + (await page.getAttribute('input[name="taskRoles.taskrole.image"]', 'id')) + '-err', /image/i);
  await shot('06-submit-errors');
});

await step('a job the server refuses shows the server\'s reason', async () => {
  tolerate(/Failed to load resource.*(400|403|404)/);
  await go('#/submit');
  await page.locator('#job-form fieldset.role').first().waitFor();
  await setYaml(yamlText(`refused_${RUN}`, 'true').replace('virtualCluster: default', 'virtualCluster: no_such_vc'));
  await page.click('#job-form button[type=submit]');
  await expectText('#job-form .form-error', /refused/i);
  if (!page.url().includes('#/submit')) throw new Error('left the form after a refusal');
});

await step('submit a distributed job through the form', async () => {
  await go('#/submit');
  await page.locator('#job-form fieldset.role').first().waitFor();
  await page.fill('input[name="name"]', formJob);
  await page.fill('input[name="taskRoles.taskrole.name"]', 'master');
  await page.press('input[name="taskRoles.taskrole.name"]', 'Tab');
  await page.locator('fieldset.role[data-role="master"]').waitFor();
  await page.fill('input[name="taskRoles.master.image"]', 'ubuntu:22.04');
  await page.fill('textarea[name="taskRoles.master.commands"]', 'echo portal-form-$PAI_TASK_ROLE_NAME\nsleep 3');
  await page.click('text=Add task role');
  await page.locator('fieldset.role[data-role="worker"]').waitFor();
  await page.fill('input[name="taskRoles.worker.instances"]', '2');
  await page.fill('textarea[name="taskRoles.worker.commands"]', 'echo portal-form-$PAI_TASK_ROLE_NAME\nsleep 3');
  await page.fill('input[name="taskRoles.worker.ports"]', 'http:1');
  // the YAML editor follows the form
  const y = await page.inputValue('#yaml-editor');
  if (!y.includes(`name: ${formJob}`) || !y.includes('worker:') || !y.includes('instances: 2')) throw new Error(`YAML not in sync:\n${y}`);
  await shot('07-submit-form');
  await page.click('#job-form button[type=submit]');
  await page.locator('main h1').filter({ hasText: formJob }).waitFor();
});

await step('watch the form job run to completion', async () => {
  await openJob(ADMIN, formJob);
  const seen = new Set();
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const st = await page.evaluate(() => document.getElementById('main').dataset.state);
    seen.add(st);
    if (['SUCCEEDED', 'FAILED', 'STOPPED'].includes(st)) break;
    if (Date.now() > deadline) throw new Error(`still ${st} after ${WAIT_MS} ms`);
    await page.waitForTimeout(500);
  }
  const st = await page.evaluate(() => document.getElementById('main').dataset.state);
  if (st !== 'SUCCEEDED') throw new Error(`ended ${st} (seen ${[...seen].join(',')})`);
  const rows = await page.locator('table.tasks tbody tr').count();
  if (rows !== 3) throw new Error(`expected 3 task rows, got ${rows}`);
  await expectText('section:has(#j-events)', /No events|Reason/);
  await shot('08-job-detail');
});

await step('read a task log of the form job', async () => {
  await openJob(ADMIN, formJob);
  await page.locator('tr[data-role="worker"][data-index="0"] button', { hasText: 'stdout' }).click();
  await expectText('pre.log', /portal-form-worker/, 30000);
  await shot('09-job-logs');
});

await step('submit a distributed job through the YAML editor', async () => {
  await go('#/submit');
  await page.locator('#job-form fieldset.role').first().waitFor();
  await setYaml(yamlText(yamlJob, 'echo portal-yaml-ok'));
  // the form follows the YAML
  await page.locator('fieldset.role[data-role="worker"]').waitFor();
  if ((await page.inputValue('input[name="name"]')) !== yamlJob) throw new Error('form name not synced from YAML');
  await page.click('#job-form button[type=submit]');
  await page.locator('main h1').filter({ hasText: yamlJob }).waitFor();
  const st = await waitState(['RUNNING', 'SUCCEEDED', 'FAILED']);
  if (st === 'FAILED') throw new Error('YAML job failed');
});

await step('follow a running task log', async () => {
  await go('#/submit');
  await page.locator('#job-form fieldset.role').first().waitFor();
  await setYaml(yamlText(longJob, 'for i in $(seq 1 600); do echo tick $i; sleep 1; done', 1));
  await page.click('#job-form button[type=submit]');
  await page.locator('main h1').filter({ hasText: longJob }).waitFor();
  await waitState(['RUNNING']);
  await page.check('#log-follow');
  await page.locator('tr[data-role="master"][data-index="0"] button', { hasText: 'stdout' }).click();
  await expectText('pre.log', /tick 2/, 30000);
  const n = (t) => Math.max(...[...t.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
  const first = n(await page.textContent('pre.log'));
  await page.waitForFunction((f) => {
    const ticks = [...document.querySelector('pre.log').textContent.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
    return Math.max(...ticks) >= f + 2;
  }, first, { timeout: 30000 });
  await shot('10-job-log-follow');
});

await step('stop another job from the jobs table', async () => {
  await go(`#/jobs?keyword=${longJob}`);
  const box = page.locator(`tr[data-job="${ADMIN}~${longJob}"] input[type=checkbox]`);
  await box.waitFor();
  await box.check();
  await shot('11-jobs');
  await page.click('text=Stop selected');
  await page.click('dialog button[value=ok]');
  await expectText('.toast', /Stopping 1 job/);
  await openJob(ADMIN, longJob);
  await waitState(['STOPPED']);
});

await step('the job page shows a copyable ssh command (ssh runtime plugin)', async () => {
  const sshJob = `sshx_${Math.random().toString(36).slice(2, 7)}`; // not in the RUN keyword filter below
  await go('#/submit');
  await page.locator('#job-form fieldset.role').first().waitFor();
  await setYaml(`protocolVersion: 2
name: ${sshJob}
type: job
prerequisites:
  - {type: dockerimage, name: img, uri: "ubuntu:22.04"}
defaults:
  virtualCluster: default
taskRoles:
  main:
    instances: 1
    dockerImage: img
    resourcePerInstance: {cpu: 1, memoryMB: 256, gpu: 1}
    commands:
      - sleep 600
extras:
  com.microsoft.pai.runtimeplugin:
    - plugin: ssh
      parameters: {jobssh: true}
`);
  await page.click('#job-form button[type=submit]');
  await page.locator('main h1').filter({ hasText: sshJob }).waitFor();
  await waitState(['RUNNING']);
  await expectText('section.ssh code.cmd', new RegExp(`pai ssh ${ADMIN}~${sshJob} main 0`), 30000);
  await expectText('section.ssh code.cmd', new RegExp(`ssh -p \\d+ ${ADMIN}@`));
  await shot('11b-job-ssh');
  await page.click('button:text-is("Stop")');
  await page.click('dialog button[value=ok]');
  await waitState(['STOPPED']);
  if (await page.locator('section.ssh').isVisible()) throw new Error('the ssh card stays after the job stopped');
});

await step('jobs table filters, sorts and pages', async () => {
  await go(`#/jobs?keyword=${RUN}`);
  await page.locator('table.jobs tbody tr').first().waitFor();
  const n = await page.locator('table.jobs tbody tr').count();
  if (n < 3) throw new Error(`expected at least 3 jobs for keyword ${RUN}, got ${n}`);
  await page.click('button.sort:has-text("Name")');
  await page.waitForFunction(() => location.hash.includes('order=jobName'));
  await page.selectOption('select[name=state]', 'STOPPED');
  await page.waitForFunction((j) => { const rows = [...document.querySelectorAll('table.jobs tbody tr')]; return rows.length === 1 && rows[0].dataset.job.endsWith(j); }, longJob);
});

await step('clone a job into the form and submit it', async () => {
  await openJob(ADMIN, formJob);
  await page.click('a:has-text("Clone")');
  await page.locator('fieldset.role[data-role="worker"]').waitFor();
  const name = await page.inputValue('input[name="name"]');
  if (!name.startsWith(`${formJob}_clone_`)) throw new Error(`clone name ${name}`);
  if ((await page.inputValue('input[name="taskRoles.worker.instances"]')) !== '2') throw new Error('clone lost the worker instances');
  await shot('12-clone');
  await page.click('#job-form button[type=submit]');
  await page.locator('main h1').filter({ hasText: name }).waitFor();
});

await step('tag a job', async () => {
  await openJob(ADMIN, formJob);
  await page.click('button:has-text("Add tag")');
  await page.fill('dialog input', 'portal-test');
  await page.click('dialog button[value=ok]');
  await expectText('.tags .tag', /portal-test/);
  await go('#/jobs?tag=portal-test');
  await page.waitForFunction((j) => { const rows = [...document.querySelectorAll('table.jobs tbody tr')]; return rows.length === 1 && rows[0].dataset.job.endsWith(j); }, formJob);
});

await step('delete a finished job', async () => {
  await openJob(ADMIN, longJob);
  await page.click('main .actions button:has-text("Delete")');
  await page.click('dialog button[value=ok]');
  await page.waitForFunction(() => location.hash.startsWith('#/jobs'));
  await expectText('.toast', /Deleted/);
  tolerate(/Failed to load resource.*404/);
  const status = await page.evaluate(async (j) => {
    const tok = decodeURIComponent(document.cookie.split('; ').find((c) => c.startsWith('token=')).slice(6));
    return (await fetch(`/api/v2/jobs/${j}`, { headers: { Authorization: `Bearer ${tok}` } })).status;
  }, `${ADMIN}~${longJob}`);
  if (status !== 404) throw new Error(`the deleted job still answers ${status}`);
});

await step('cluster page lists nodes and virtual clusters', async () => {
  await go('#/cluster');
  await page.locator('table.nodes tbody tr').first().waitFor();
  await page.locator('tr[data-vc="default"]').waitFor();
  // a /metrics sample draws the lines; attached, not visible: the first line
  // is GPU utilization now that agents report it, flat (empty box) when idle
  await page.locator('figure.chart svg path.line').first().waitFor({ state: 'attached', timeout: 20000 });
  await shot('13-cluster');
});

await step('cluster chart draws the server history after a reload', async () => {
  // Live /metrics samples answer nothing here, so every point comes from
  // /api/v2/cluster/metrics-history (the server samples at start-up).
  const live = (u) => new URL(u).pathname === '/metrics';
  await page.route(live, (r) => r.fulfill({ status: 200, contentType: 'text/plain', body: '' }));
  try {
    await page.evaluate(() => sessionStorage.removeItem('pai-gpu-samples'));
    await page.reload();
    // attached, not visible: a flat line (no GPU in use) has an empty box
    await page.locator('figure.chart svg path.line').first().waitFor({ state: 'attached', timeout: 20000 });
  } finally {
    await page.unroute(live);
  }
});

await step('usage page shows GPU-hours held and used per job, with a CSV export', async () => {
  await go('#/usage');
  await page.locator('table.usage tbody tr').first().waitFor();
  await page.selectOption('select[name="by"]', 'job');
  await page.locator('table.usage tbody tr[data-key*="~"]').first().waitFor();
  await expectText('p.totals', /GPU-hours held/);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('button.export-csv')]);
  const text = fs.readFileSync(await dl.path(), 'utf8');
  const lines = text.trim().split('\n');
  if (!lines[0].startsWith('job,heldGpuHours,usedGpuHours,utilization') || lines.length < 2 || !lines[1].includes('~')) {
    throw new Error(`unexpected CSV: ${text.slice(0, 300)}`);
  }
  await shot('13-usage');
});

await step('profile creates an application token', async () => {
  await go('#/profile');
  await page.click('button:has-text("Create application token")');
  await page.locator('.notice code.token').waitFor();
  await shot('14-profile');
});

await step('profile sets notification settings, kept after a reload; a refused webhook is shown at its field', async () => {
  await go('#/profile');
  const ev = (name) => page.locator(`input[name=notify-on][value=${name}]`);
  await page.locator('#notify-email').waitFor();
  await page.uncheck('#notify-email');
  await ev('retried').check();
  await ev('stopped').uncheck();
  await page.click('button:has-text("Save notification settings")');
  await expectText('.toast', /Notification settings saved/);
  await go('#/profile');
  await page.locator('#notify-email').waitFor();
  const got = await page.evaluate(() => ({
    email: document.getElementById('notify-email').checked,
    on: [...document.querySelectorAll('input[name=notify-on]:checked')].map((c) => c.value),
    hook: document.querySelector('input[name=notify-webhook]').value,
    state: document.getElementById('notify-state').textContent,
  }));
  if (got.email || got.on.join() !== 'succeeded,failed,retried' || got.hook !== '' || got.state) {
    throw new Error(`settings after a reload: ${JSON.stringify(got)}`);
  }
  // pai up's server allows no webhook host: the server's refusal is shown next to the field.
  tolerate(/Failed to load resource/);
  await page.fill('input[name=notify-webhook]', 'http://169.254.169.254/latest/meta-data/');
  await page.click('button:has-text("Save notification settings")');
  await expectText('.field:has(input[name=notify-webhook]) .field-error', /not enabled|allow-list/);
  if (!(await page.locator('input[name=notify-webhook][aria-invalid=true]').count())) throw new Error('the webhook field is not marked invalid');
  await shot('14-profile-notifications');
  await go('#/profile');
  await page.locator('#notify-email').waitFor();
  if (await page.inputValue('input[name=notify-webhook]') !== '') throw new Error('the refused webhook was saved');
});

await step('phone-width pages fit the screen', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [hash, name] of [['#/', 'dashboard'], ['#/jobs', 'jobs'], ['#/submit', 'submit'], [`#/job/${ADMIN}~${formJob}`, 'job'],
    ['#/cluster', 'cluster'], ['#/admin/users', 'admin'], ['#/profile', 'profile']]) {
    await go(hash);
    await page.locator('main h1').first().waitFor();
    await page.waitForTimeout(300);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (over > 1) throw new Error(`${name} is ${over}px wider than the screen`);
    await shot(`15-phone-${name}`);
  }
  await page.setViewportSize({ width: 1366, height: 768 });
});

await step('a non-admin is refused the admin pages', async () => {
  await logout();
  await login(userName, userPw);
  if (await page.locator('#nav a:has-text("Admin")').count()) throw new Error('admin link shown to a non-admin');
  for (const tab of ['users', 'groups', 'vcs']) {
    await go(`#/admin/${tab}`);
    await expectText('main h1', /Administrators only/);
  }
  await shot('16-non-admin-refused');
  const status = await page.evaluate(async () => {
    const tok = document.cookie.split('; ').find((c) => c.startsWith('token='))?.slice(6);
    const r = await fetch('/api/v2/users', { method: 'POST', headers: { Authorization: `Bearer ${decodeURIComponent(tok)}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'mallory', password: 'xxxxxxxx' }) });
    return r.status;
  });
  tolerate(/Failed to load resource/);
  if (status !== 403 && status !== 401) throw new Error(`server let a non-admin create a user (status ${status})`);
});

await step('logout returns to the login page', async () => {
  await logout();
  await go('#/jobs');
  await page.locator('form.login').waitFor();
});

await finish();
