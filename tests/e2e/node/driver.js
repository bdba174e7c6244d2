#!/usr/bin/env node
// Drive the official @vonage/meetings SDK against a meetd server, one call per run.
//
//   node driver.js <meetingsHost> <applicationId> <privateKeyPath> <op> [jsonArg ...]
//   node driver.js http://127.0.0.1:8080 APP_ID app.pem getRooms '{"pageSize":2}'
//   echo '[["createRoom", {"displayName":"a"}], ["getRooms"]]' | node driver.js ... -
//
// meetingsHost is scheme://host:port only: the SDK appends /v1/meetings itself. Each jsonArg
// is JSON.parse'd, falling back to the raw string, so ids need no quotes. Async-generator ops
// (getRooms, getThemes, ...) are drained into an array. Prints one JSON line per call:
//   {"ok":true,"result":...}   or   {"ok":false,"status":404,"error":"...","body":...}
// The op "-" reads a JSON array of [op, ...args] calls from stdin and makes them in order,
// in one process (node's start-up dominates a single call).
// Exit status: 0 ok, 1 API error (any call), 2 usage error.
'use strict';
const { Auth } = require('@vonage/auth');
const { Meetings } = require('@vonage/meetings');

function parseArg(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function call(client, op, args) {
  if (typeof client[op] !== 'function') {
    console.error(`unknown op ${op}`);
    process.exit(2);
  }
  try {
    let result = client[op](...args);
    if (result && typeof result[Symbol.asyncIterator] === 'function') {
      const items = [];
      for await (const item of result) items.push(item);
      result = items;
    } else {
      result = await result;
    }
    return { ok: true, result: result === undefined ? null : result };
  } catch (err) {
    // A non-2xx answer is a VetchError whose .response is the unread node-fetch Response.
    const out = { ok: false, error: String(err && err.message) };
    if (err && err.response) {
      out.status = err.response.status;
      out.body = parseArg(await err.response.text());
    }
    process.exitCode = 1;
    return out;
  }
}

function readStdin() {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => { text += chunk; });
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

async function main() {
  const [meetingsHost, applicationId, privateKey, op, ...rawArgs] = process.argv.slice(2);
  if (!op) {
    console.error('usage: driver.js <meetingsHost> <applicationId> <privateKeyPath> <op|-> [jsonArg ...]');
    process.exit(2);
  }
  // Auth reads the key from disk when privateKey names an existing file.
  const client = new Meetings(new Auth({ applicationId, privateKey }), {
    meetingsHost,
    timeout: 10000,
  });
  const calls = op === '-' ? JSON.parse(await readStdin()) : [[op, ...rawArgs.map(parseArg)]];
  for (const [name, ...args] of calls) {
    console.log(JSON.stringify(await call(client, name, args)));
  }
}

main();
