// Runs an exported Automation document end to end with @cdklabs/cdk-ssm-documents, every AWS
// call against the emulator that AWS_ENDPOINT_URL names:
//
//   node simulate.js DOC PARAMETERS_JSON
//
// - API steps go through our invoker (invoke.py: boto3), script steps run under `python3`
//   (PATH: the test's virtualenv, with boto3) with this environment, so both reach the emulator.
// - Approvals are answered yes: a text-loaded aws:approve crashes the simulator
//   (approve-step.js:40), so each becomes an aws:pause whose hook counts it.
// - `global:REGION` and `global:ACCOUNT_ID` are given (the simulator has neither), from
//   AWS_REGION and SIM_ACCOUNT_ID.
// Prints one JSON object: responseCode, executedSteps, outputs, approvals, stackTrace.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const yaml = require('js-yaml');
const cdk = require('aws-cdk-lib');
const ssm = require('@cdklabs/cdk-ssm-documents');

const [docPath, paramsJson] = process.argv.slice(2);
const doc = yaml.load(fs.readFileSync(docPath, 'utf8'));
const approvals = [];
for (const s of doc.mainSteps) {
  if (s.action === 'aws:approve') {
    s.action = 'aws:pause';
    s.inputs = {};
  }
  if (s.action === 'aws:loop') {
    throw new Error(`step ${s.name}: the simulator cannot run aws:loop (checked statically only)`);
  }
}

const invoker = {
  invoke(invocation) {
    const service = typeof invocation.service === 'string' ? invocation.service : invocation.service.namespace;
    const out = execFileSync('python3', [path.join(__dirname, 'invoke.py')], {
      input: JSON.stringify({ service, api: invocation.awsApi, params: invocation.awsParams }),
      encoding: 'utf8',
    });
    const res = JSON.parse(out);
    if (res.error !== undefined) {
      throw new Error(`${service}:${invocation.awsApi}: ${res.error}: ${res.message}`);
    }
    return res;
  },
};
const pauseHook = { pause() { approvals.push('approval'); } };

const app = new cdk.App();
const stack = new cdk.Stack(app, 'Sim');
const document = ssm.StringDocument.fromYaml(stack, 'Doc', yaml.dump(doc));
const inputs = {};
for (const [name, p] of Object.entries(doc.parameters || {})) {
  if (p.default !== undefined) inputs[name] = p.default;
}
Object.assign(inputs, JSON.parse(paramsJson || '{}'));
inputs['global:REGION'] = process.env.AWS_REGION || 'us-east-1';
inputs['global:ACCOUNT_ID'] = process.env.SIM_ACCOUNT_ID || '123456789012';

// The simulator logs each step on stdout; our report is the last line.
const result = new ssm.AutomationSimulation(document, { awsInvoker: invoker, pauseHook }).start(inputs);
process.stdout.write('\n' + JSON.stringify({
  responseCode: ssm.ResponseCode[result.responseCode],
  executedSteps: result.executedSteps,
  outputs: result.outputs,
  approvals: approvals.length,
  stackTrace: result.stackTrace,
}) + '\n');
process.exit(result.responseCode === ssm.ResponseCode.SUCCESS ? 0 : 1);
