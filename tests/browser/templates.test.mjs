// templates.test.mjs - the portal's template pages in headless Chromium
// against a running `pai up` cluster (whose server published the
// repository's examples as featured templates), run by run_cluster_tests.py
// after portal.test.mjs:
//
//   PORTAL_URL=... ADMIN_USER=admin ADMIN_PASSWORD=... OUT=dir node tests/browser/templates.test.mjs
//
// Steps: the list with the featured examples, search and tag filter, the
// detail page, submitting from a template with a parameter (the job runs
// and its log has the value; the use count goes up; the job page links the
// template), publishing a job as a template for a group, the secrets rule
// in the publish form, editing, featuring (admin), what a new user and a
// user outside the group see (the dashboard's featured list), deleting.
// Prints "ok - name" / "not ok - name" per step; a screenshot of every page
// goes to $OUT (templates-*.png); a console error fails its step.
import {
  ADMIN, ADMIN_PW, RUN, apiCall, expectText, finish, go, login, logout, page, setPrefixes, shot,
  step, tolerate, waitState,
} from './harness.mjs';

setPrefixes('templates: ', 'templates-');

const team = `team_${RUN}`;
const member = `bob_${RUN}`;
const outsider = `carol_${RUN}`;
const PW = 'tpl-secret-1';
const jobName = `hello_tpl_${RUN}`;
const tplName = `mine_${RUN}`;
const SECRET_YAML = `protocolVersion: 2
name: withsecret_${RUN}
type: job
prerequisites:
  - {type: dockerimage, name: img, uri: 'debian:12'}
secrets:
  token: s3cr3t-${RUN}
taskRoles:
  main:
    dockerImage: img
    resourcePerInstance: {cpu: 1, memoryMB: 128, gpu: 0}
    commands: [echo hi]
`;

await step('admin sees the featured examples on the template page', async () => {
  await login(ADMIN, ADMIN_PW);
  for (const [p, b] of [['/api/v2/groups', { groupname: team, description: '', externalName: team, extension: {} }],
    ['/api/v2/users', { username: member, password: PW, admin: false, virtualCluster: ['default'] }],
    ['/api/v2/users', { username: outsider, password: PW, admin: false, virtualCluster: ['default'] }]]) {
    const r = await apiCall('POST', p, b);
    if (r.status !== 201) throw new Error(`setup ${p}: ${r.status} ${r.body}`);
  }
  const r = await apiCall('PUT', `/api/v2/users/${member}/group`, { groupname: team });
  if (r.status !== 201) throw new Error(`setup group member: ${r.status} ${r.body}`);
  await go('#/templates');
  await page.locator('#tpl-featured').waitFor();
  await page.locator('[data-template="admin~hello-world"]').first().waitFor();
  await page.locator('[data-template="admin~sweep"]').first().waitFor();
  await shot('templates-01-list');
});

await step('search and the tag filter narrow the list', async () => {
  await go('#/templates');
  await page.locator('#tpl-results [data-template]').first().waitFor();
  await page.fill('input[name=q]', 'sweep');
  await page.waitForFunction(() => {
    const ids = [...document.querySelectorAll('#tpl-results [data-template]')].map((e) => e.dataset.template);
    return ids.length === 1 && ids[0] === 'admin~sweep';
  });
  await page.fill('input[name=q]', '');
  await page.locator('.tag-filter button', { hasText: 'example' }).click();
  await expectText('#tpl-count', /tagged example/);
  await page.selectOption('select[name=sort]', 'title');
  await page.waitForFunction(() => location.hash.includes('sort=title') && location.hash.includes('tag=example'));
  await shot('templates-02-search');
});

await step('the detail page shows parameters and the protocol', async () => {
  await go('#/template/admin~hello-world');
  await page.locator('main h1').filter({ hasText: 'hello-world' }).waitFor();
  await expectText('table.params', /greeting/);
  await expectText('#tpl-yaml', /protocolVersion: 2/);
  await page.locator('button:has-text("Unfeature")').waitFor(); // an admin curates
  await shot('templates-03-detail');
});

await step('submit from a template with a parameter; the job runs with it', async () => {
  await go('#/template/admin~hello-world/submit');
  await page.locator('main[data-ready=true]').waitFor();
  await page.fill('input[name=job-name]', jobName);
  await page.fill('input[name=param-greeting]', `bonjour-${RUN}`);
  await shot('templates-04-submit-form');
  await page.click('form.tpl-submit button[type=submit]');
  await page.locator('main h1').filter({ hasText: jobName }).waitFor();
  await expectText('#j-template', /admin~hello-world/);
  await waitState(['SUCCEEDED']);
  const r = await apiCall('GET', `/api/v2/jobs/${ADMIN}~${jobName}/config`);
  if (!r.body.includes(`bonjour-${RUN}`)) throw new Error(`the job's config lacks the parameter: ${r.body}`);
  await shot('templates-05-job-from-template');
  await go('#/template/admin~hello-world');
  await expectText('#tpl-uses', /[1-9]\d* time/);
});

await step('publish a job as a template for a group', async () => {
  await go(`#/job/${ADMIN}~${jobName}`);
  await page.locator('a:has-text("Publish as template")').click();
  await page.locator('main[data-ready=true]').waitFor();
  const proto = await page.inputValue('#tpl-protocol');
  if (!proto.includes(`bonjour-${RUN}`)) throw new Error('the form did not get the job\'s config');
  await page.fill('input[name=tpl-name]', tplName);
  await page.fill('input[name=tpl-title]', `Greeter ${RUN}`);
  await page.fill('textarea[name=tpl-description]', 'Says bonjour, for the team.');
  await page.fill('input[name=tpl-tags]', 'greeting, French');
  await page.check('input[name=tpl-visibility][value=groups]');
  await page.check(`input[name=tpl-group][value="${team}"]`);
  await shot('templates-06-publish-form');
  await page.click('form.tpl-publish button[type=submit]');
  await page.locator('main h1').filter({ hasText: `Greeter ${RUN}` }).waitFor();
  await expectText('main', new RegExp(`groups: ${team}`));
  await shot('templates-07-published');
});

await step('the publish form refuses secrets, then strips them when asked', async () => {
  tolerate(/Failed to load resource/); // the 400 answer is logged by Chromium
  await go('#/templates/publish');
  await page.locator('main[data-ready=true]').waitFor();
  await page.fill('#tpl-protocol', SECRET_YAML);
  await page.fill('input[name=tpl-name]', `withsecret_${RUN}`);
  await page.click('form.tpl-publish button[type=submit]');
  await expectText('#tpl-error', /no secrets/);
  await shot('templates-08-secrets-refused');
  await page.check('input[name=tpl-strip]');
  await page.click('form.tpl-publish button[type=submit]');
  await expectText('.toast', /removed the secrets section/);
  await page.locator('#tpl-yaml').waitFor();
  if ((await page.textContent('#tpl-yaml')).includes('s3cr3t')) throw new Error('the secret was kept');
});

await step('the owner edits a template', async () => {
  await go(`#/template/admin~${tplName}`);
  await page.locator('a.button:has-text("Edit")').click();
  await page.locator('main[data-ready=true]').waitFor();
  await page.fill('textarea[name=tpl-description]', `Edited ${RUN}.`);
  await page.click('form.tpl-publish button[type=submit]');
  await expectText('.tpl-desc', new RegExp(`Edited ${RUN}`));
});

await step('an admin features a public template', async () => {
  await go(`#/template/admin~withsecret_${RUN}`);
  await page.locator('a.button:has-text("Edit")').click();
  await page.locator('main[data-ready=true]').waitFor();
  await page.check('input[name=tpl-visibility][value=public]');
  await page.click('form.tpl-publish button[type=submit]');
  await page.locator('button:has-text("Feature")').click();
  await expectText('main h1 .badge', /featured/);
});

await step('a group member sees the group template; the dashboard shows the featured ones', async () => {
  await logout();
  await login(member, PW);
  await page.locator('#d-tpl').waitFor();
  await expectText('.tpl-list', /hello-world/);
  await shot('templates-09-dashboard-new-user');
  await go('#/templates');
  await page.fill('input[name=q]', RUN);
  await page.locator(`#tpl-results [data-template="admin~${tplName}"]`).waitFor();
  await go(`#/template/admin~${tplName}`);
  await page.locator('main h1').filter({ hasText: `Greeter ${RUN}` }).waitFor();
  if (await page.locator('a.button:has-text("Edit")').count()) throw new Error('a member may edit');
});

await step('a user outside the group does not see it', async () => {
  tolerate(/Failed to load resource/); // the 404 answer
  await logout();
  await login(outsider, PW);
  await go('#/templates');
  await page.fill('input[name=q]', RUN);
  await page.locator(`#tpl-results [data-template="admin~withsecret_${RUN}"]`).waitFor();
  if (await page.locator(`#tpl-results [data-template="admin~${tplName}"]`).count()) throw new Error('an outsider sees the group template');
  await go(`#/template/admin~${tplName}`);
  await expectText('.error-box', /not found/i);
  await shot('templates-10-outsider');
});

await step('phone-width template pages fit the screen', async () => {
  await page.setViewportSize({ width: 390, height: 800 });
  for (const [name, hash] of [['list', '#/templates'], ['detail', '#/template/admin~sweep'], ['submit', '#/template/admin~sweep/submit']]) {
    await go(hash);
    await page.locator('main h1').first().waitFor();
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (wide > 2) throw new Error(`${name} is ${wide}px wider than the screen`);
    await shot(`templates-11-phone-${name}`);
  }
  await page.setViewportSize({ width: 1366, height: 768 });
});

await step('the owner deletes a template', async () => {
  await logout();
  await login(ADMIN, ADMIN_PW);
  await go(`#/template/admin~${tplName}`);
  await page.locator('button:has-text("Delete")').click();
  await page.click('dialog button[value=ok]');
  await page.waitForFunction(() => location.hash.startsWith('#/templates'));
  const r = await apiCall('GET', `/api/v2/templates/admin~${tplName}`);
  tolerate(/Failed to load resource/);
  if (r.status !== 404) throw new Error(`still there: ${r.status}`);
});

await finish();
