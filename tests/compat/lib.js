// lib.js - shared helpers of the compatibility tests (tests/compat/*.js):
// "ok - name" / "not ok - name" reporting, and the OpenPAI REST API v2 spec
// (tests/data/reference/openpai-rest-api-v2.yaml) as a response validator.
//
// A response is "as the spec says" when its status is one the spec lists for
// the operation and its body validates against that status's JSON schema
// (OpenAPI 3 schema objects, checked with ajv with `nullable` support).  For
// an error, the spec's example codes for that status are also compared.
'use strict';

const fs = require('fs');
const yaml = require('js-yaml');
const Ajv = require('ajv');

let passed = 0;
let failed = 0;

function ok(name) {
  passed++;
  console.log(`ok - ${name}`);
}

function notOk(name, detail) {
  failed++;
  console.log(`not ok - ${name}`);
  if (detail !== undefined && detail !== null) {
    const text = typeof detail === 'string' ? detail : JSON.stringify(detail);
    for (const line of text.split('\n').slice(0, 20)) console.log(`  ${line.slice(0, 400)}`);
  }
}

function check(cond, name, detail) {
  if (cond) ok(name);
  else notOk(name, detail);
  return !!cond;
}

function summary() {
  console.log(`# ${passed} passed, ${failed} failed`);
  return failed;
}

// JSON pointer ("#/a/b~1c") into doc.
function pointer(doc, ref) {
  return ref
    .replace(/^#\//, '')
    .split('/')
    .map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((node, key) => (node === undefined ? undefined : node[key]), doc);
}

function esc(s) {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

class Spec {
  constructor(file) {
    this.doc = yaml.safeLoad(fs.readFileSync(file, 'utf8'));
    this.ajv = new Ajv({ nullable: true, unknownFormats: 'ignore', validateSchema: false, allErrors: true });
    this.ajv.addSchema(this.doc, 'spec');
  }

  // The operation object of METHOD PATH (path as written in the spec).
  operation(method, path) {
    const item = this.doc.paths[path];
    return item ? item[method.toLowerCase()] : undefined;
  }

  // The statuses the spec lists for the operation, as strings.
  statuses(method, path) {
    const op = this.operation(method, path);
    return op ? Object.keys(op.responses) : [];
  }

  // [response object, its JSON-pointer location] for a status, following a $ref.
  response(method, path, status) {
    const op = this.operation(method, path);
    if (!op || !op.responses[String(status)]) return [undefined, undefined];
    let loc = `#/paths/${esc(path)}/${method.toLowerCase()}/responses/${status}`;
    let r = op.responses[String(status)];
    if (r.$ref) {
      loc = r.$ref;
      r = pointer(this.doc, r.$ref);
    }
    return [r, loc];
  }

  // Problems (strings) of body as the STATUS answer of METHOD PATH; [] when none.
  problems(method, path, status, body) {
    const op = this.operation(method, path);
    if (!op) return [`the spec has no ${method} ${path}`];
    const [r, loc] = this.response(method, path, status);
    if (!r) return [`the spec lists no ${status} for ${method} ${path} (it lists ${this.statuses(method, path).join(', ')})`];
    if (!r.content || !r.content['application/json'] || !r.content['application/json'].schema) return [];
    const ref = `spec${loc}/content/application~1json/schema`;
    const valid = this.ajv.validate({ $ref: ref }, body);
    // The spec's Response.code enum misses codes its own responses use
    // (NoStorageError, NoTagError, NoTaskLogError...): those are accepted.
    const out = valid ? [] : this.ajv.errors
      .filter(e => !(e.keyword === 'enum' && e.dataPath === '.code' && this.allCodes().has(body.code)))
      .map(e => `body${e.dataPath} ${e.message} ${JSON.stringify(e.params)}`);
    const codes = this.exampleCodes(r);
    if (codes.length && body && typeof body === 'object' && !codes.includes(body.code)) {
      out.push(`code ${body.code}; the spec's examples for ${status} say ${codes.join(' or ')}`);
    }
    return out;
  }

  // Every error code the spec names in an example.
  allCodes() {
    if (!this.codes) {
      this.codes = new Set();
      const walk = n => {
        if (Array.isArray(n)) n.forEach(walk);
        else if (n && typeof n === 'object') {
          if (typeof n.code === 'string' && typeof n.message === 'string') this.codes.add(n.code);
          Object.values(n).forEach(walk);
        }
      };
      walk(this.doc);
    }
    return this.codes;
  }

  exampleCodes(r) {
    const c = r.content && r.content['application/json'];
    if (!c) return [];
    const ex = [];
    if (c.example && c.example.code) ex.push(c.example.code);
    for (const e of Object.values(c.examples || {})) if (e.value && e.value.code) ex.push(e.value.code);
    return ex;
  }
}

module.exports = { ok, notOk, check, summary, Spec };
