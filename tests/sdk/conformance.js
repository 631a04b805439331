#!/usr/bin/env node
'use strict';
/*
 * The official SDK (@alicloud/cas20200407, pinned in package-lock.json) as the reference
 * client of the tests. Reads one JSON job on stdin, writes one JSON answer on stdout.
 *
 *   {"mode": "call", "port": N, "ca": PATH, "key": {"id", "secret", "token"?},
 *    "signature": "v3" | "v1", "calls": [{"action": A, "params": {WireName: value}}]}
 *     -> [{"action", "ok", "code", "message", "unknown_params", "violations", "body"}]
 *        each call made through the SDK's typed method (clientXxxWithOptions); the raw
 *        answer is checked against the SDK's response model, read from its names() and
 *        types() maps: a field the model lacks or a type it would refuse is a violation.
 *   {"mode": "models", "actions": [A...]}
 *     -> {A: {"request": [WireName...], "response": [WireName...]}}
 *   {"mode": "signed", "headers": {name: value}}
 *     -> {"signed": [names the SDK's signer signs of these headers]}
 *   {"mode": "conditions", "model": M}
 *     -> {WireName: [OrderType...]}: the fields M's documentation returns only for these
 *   {"mode": "endpoints", "regions": [R...]}
 *     -> {"map": {region: host}, "endpoints": {R: host the SDK uses}}
 */
const fs = require('fs');
const cas = require('@alicloud/cas20200407');
const core = require('@alicloud/openapi-core');

const Client = cas.default;

function lcfirst(s) {
    return s[0].toLowerCase() + s.slice(1);
}

function requestModel(action) {
    const m = cas[action + 'Request'];
    if (!m) throw new Error('the SDK has no request model for ' + action);
    return m;
}

function bodyModel(action) {
    const m = cas[action + 'ResponseBody'];
    if (!m) throw new Error('the SDK has no response model for ' + action);
    return m;
}

function isModel(t) {
    return typeof t === 'function' && typeof t.names === 'function';
}

/* What is wrong with value v for the model's type t, or null. */
function typeProblem(v, t, path, out) {
    if (v === null || v === undefined) return;
    if (isModel(t)) {
        if (typeof v !== 'object' || Array.isArray(v)) {
            out.push(`${path}: ${JSON.stringify(v)} where the model has an object`);
            return;
        }
        checkModel(v, t, path, out);
        return;
    }
    if (typeof t === 'object' && t.type === 'array') {
        if (!Array.isArray(v)) {
            out.push(`${path}: ${typeof v} where the model has an array`);
            return;
        }
        v.forEach((e, i) => typeProblem(e, t.itemType, `${path}[${i}]`, out));
        return;
    }
    if (typeof t === 'object' && t.type === 'map') {
        if (typeof v !== 'object' || Array.isArray(v)) out.push(`${path}: not a map`);
        return;
    }
    if (t === 'any') return;
    if (['string', 'number', 'boolean'].includes(t)) {
        if (typeof v !== t) out.push(`${path}: ${typeof v} ${JSON.stringify(v).slice(0, 40)} where the model has ${t}`);
        return;
    }
    out.push(`${path}: the model's type ${JSON.stringify(t)} is not understood here`);
}

/* Every field of obj must be in model.names() (by wire name) with a type types() accepts. */
function checkModel(obj, model, path, out) {
    const names = model.names(), types = model.types();
    const byWire = {};
    for (const k of Object.keys(names)) byWire[names[k]] = k;
    for (const wire of Object.keys(obj)) {
        const field = byWire[wire];
        if (field === undefined) {
            out.push(`${path}.${wire}: a field the SDK's model ${model.name} does not have`);
            continue;
        }
        typeProblem(obj[wire], types[field], `${path}.${wire}`, out);
    }
}

/*
 * The SDK's documentation of a model's fields ("This parameter is returned only if
 * OrderType is set to CERT or UPLOAD"): {WireName: [OrderType values]} from client.d.ts.
 */
function conditions(model) {
    const dts = fs.readFileSync(require.resolve('@alicloud/cas20200407/dist/client.d.ts'), 'utf8');
    const start = dts.indexOf(`class ${model} `);
    if (start < 0) throw new Error('the SDK has no model ' + model);
    const body = dts.slice(start, dts.indexOf('static names()', start));
    const names = cas[model].names();
    const out = {};
    const re = /\/\*\*([\s\S]*?)\*\/\s*(\w+)\?:/g;
    let m;
    while ((m = re.exec(body)) !== null) {
        const c = /returned only if OrderType is set to ([A-Z]+(?: or [A-Z]+)*)/.exec(m[1].replace(/\s*\*\s*/g, ' '));
        if (c && names[m[2]]) out[names[m[2]]] = c[1].split(' or ');
    }
    return out;
}

function requestNames(action) {
    return Object.values(requestModel(action).names());
}

/* The wire parameters as the request model's fields; names the model lacks are reported. */
function toRequest(action, params, unknown) {
    const model = requestModel(action);
    const names = model.names(), types = model.types();
    const byWire = {};
    for (const k of Object.keys(names)) byWire[names[k]] = k;
    const fields = {};
    for (const wire of Object.keys(params)) {
        const f = byWire[wire];
        if (f === undefined) {
            unknown.push(wire);
            continue;
        }
        const v = params[wire];
        fields[f] = types[f] === 'number' ? Number(v) : types[f] === 'boolean' ? (v === true || v === 'true') : v;
    }
    return new model(fields);
}

function client(job) {
    const conf = {
        accessKeyId: job.key.id,
        accessKeySecret: job.key.secret,
        endpoint: `127.0.0.1:${job.port}`,
        protocol: 'https',
        regionId: 'cn-hangzhou',
        ca: fs.readFileSync(job.ca, 'utf8'),
    };
    if (job.key.token) conf.securityToken = job.key.token;
    if (job.signature === 'v1') conf.signatureAlgorithm = 'v2'; /* the RPC signature 1.0 */
    return new Client(new core.$OpenApiUtil.Config(conf));
}

async function oneCall(job, call) {
    const c = client(job);
    const unknown = [];
    const out = { action: call.action, ok: false, code: null, message: null, unknown_params: unknown, violations: [], body: null };
    let raw = null;
    const orig = c.callApi.bind(c);
    c.callApi = async (...a) => {
        const r = await orig(...a);
        raw = r.body;
        return r;
    };
    const method = lcfirst(call.action) + 'WithOptions';
    if (typeof c[method] !== 'function') throw new Error('the SDK has no method ' + method);
    try {
        const req = toRequest(call.action, call.params || {}, unknown);
        const resp = await c[method](req, new (require('@darabonba/typescript').RuntimeOptions)({ autoretry: false, maxAttempts: 1 }));
        out.ok = true;
        out.body = raw;
        if (!resp || !resp.body) out.violations.push('the SDK produced no response body');
    } catch (e) {
        out.code = e.code || e.name;
        out.message = e.message;
        out.body = raw;
    }
    if (raw && typeof raw === 'object') checkModel(raw, bodyModel(call.action), call.action, out.violations);
    return out;
}

async function main() {
    const job = JSON.parse(fs.readFileSync(0, 'utf8'));
    let answer;
    if (job.mode === 'call') {
        answer = [];
        for (const call of job.calls) {
            /* "$N.Field": Field of the answer to call N (an id made by an earlier call) */
            const params = {};
            for (const [k, v] of Object.entries(call.params || {})) {
                const m = typeof v === 'string' && /^\$(\d+)\.(\w+)$/.exec(v);
                params[k] = m ? String((answer[+m[1]].body || {})[m[2]]) : v;
            }
            answer.push(await oneCall(job, { action: call.action, params }));
        }
    } else if (job.mode === 'models') {
        answer = {};
        for (const a of job.actions)
            answer[a] = { request: requestNames(a), response: Object.values(bodyModel(a).names()) };
    } else if (job.mode === 'conditions') {
        answer = conditions(job.model);
    } else if (job.mode === 'signed') {
        const auth = core.OpenApiUtil.getAuthorization({ pathname: '/', method: 'POST', query: {}, headers: job.headers },
            'ACS3-HMAC-SHA256', '', 'id', 'secret');
        answer = { signed: /SignedHeaders=([^,]*)/.exec(auth)[1].split(';').filter(Boolean) };
    } else if (job.mode === 'endpoints') {
        const c = new Client(new core.$OpenApiUtil.Config({ accessKeyId: 'x', accessKeySecret: 'y', regionId: 'cn-hangzhou' }));
        const endpoints = {};
        for (const r of job.regions)
            endpoints[r] = c.getEndpoint('cas', r, c._endpointRule, c._network, c._suffix, c._endpointMap, null);
        answer = { map: c._endpointMap, endpoints };
    } else {
        throw new Error('unknown mode ' + job.mode);
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
}

main().catch((e) => {
    process.stderr.write(`conformance.js: ${e.stack || e}\n`);
    process.exit(2);
});
