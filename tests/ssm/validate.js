// Validates Automation documents against AWS's published JSON schema (the npm package
// aws-ssm-document-language-service, a 2020 snapshot) with an overlay for what it lacks:
// aws:loop, python3.11 and PowerShell 7.4 runtimes, `variables`, `onCancel`, and the misspelt
// `aws:waitForAwsResourceProperties` that left aws:waitForAwsResourceProperty unchecked.
//
//   node validate.js [--raw] FILE...
//
// Prints one JSON object: each file's errors (instancePath, schemaPath, message). Exit 0 when
// every file is valid. `--raw` checks against the schema as published, without the overlay.
'use strict';
const fs = require('fs');
const yaml = require('js-yaml');
const Ajv = require('ajv');

function schema(raw) {
  const s = JSON.parse(JSON.stringify(require('aws-ssm-document-language-service/dist/schema.json')));
  if (raw) return s;
  const S = s.properties.mainSteps.items;
  S.properties.action.enum.push('aws:loop');
  S.properties.onCancel = { type: 'string' };
  s.properties.variables = { type: 'object' };
  for (const rule of S.allOf) {
    const action = rule.if && rule.if.properties.action.const;
    if (action === 'aws:waitForAwsResourceProperties') {
      rule.if.properties.action.const = 'aws:waitForAwsResourceProperty';
    }
    const runtime = rule.then && rule.then.properties && rule.then.properties.inputs
      && rule.then.properties.inputs.properties && rule.then.properties.inputs.properties.Runtime;
    if (action === 'aws:executeScript' && runtime) {
      runtime.oneOf[0].enum.push('python3.11', 'PowerShell 7.4');
    }
  }
  // aws:loop (AWS user guide, "aws:loop - Iterate over steps"): for-each over at most 100
  // Iterators, or a do-while with LoopCondition; its Steps are steps.
  S.allOf.push({
    if: { properties: { action: { const: 'aws:loop' } } },
    then: {
      properties: {
        inputs: {
          type: 'object',
          additionalProperties: false,
          required: ['Steps'],
          properties: {
            Iterators: { oneOf: [{ type: 'string', pattern: '^{{[ ]?[a-zA-Z0-9_.:]+[ ]?}}$' }, { type: 'array', maxItems: 100 }] },
            IteratorDataType: { enum: ['Boolean', 'Integer', 'String', 'StringMap'] },
            LoopCondition: { type: 'object' },
            MaxIterations: { type: 'integer', minimum: 1, maximum: 100 },
            Steps: { type: 'array', minItems: 1, items: { $ref: '#/properties/mainSteps/items' } },
          },
        },
      },
    },
  });
  return s;
}

function main() {
  const args = process.argv.slice(2);
  const raw = args[0] === '--raw';
  const files = raw ? args.slice(1) : args;
  // unicodeRegExp off: the schema's own `^{{...}}$` patterns are not valid Unicode regexps.
  const ajv = new Ajv({ strict: false, unicodeRegExp: false, allErrors: true });
  const validate = ajv.compile(schema(raw));
  const report = {};
  let ok = true;
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    const doc = f.endsWith('.json') ? JSON.parse(text) : yaml.load(text);
    const valid = validate(doc);
    report[f] = valid ? [] : validate.errors.map((e) => ({ instancePath: e.instancePath, schemaPath: e.schemaPath, message: e.message, params: e.params }));
    ok = ok && valid;
  }
  process.stdout.write(JSON.stringify(report, null, 1) + '\n');
  process.exit(ok ? 0 : 1);
}

main();
