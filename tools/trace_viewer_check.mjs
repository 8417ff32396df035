// Loads a gradflow trace with the trace engine of Chrome DevTools' Performance panel (published on
// npm as @paulirish/trace_engine) and reports what the viewer sees: processes, named threads, and
// any warning or error it prints while parsing. A by-hand check: the engine is not a build
// dependency.
//   npm install --prefix /tmp/te @paulirish/trace_engine@0.0.65
//   NODE_PATH=/tmp/te/node_modules node tools/trace_viewer_check.mjs trace.json
import path from 'node:path';

const engineDir = path.join(process.env.NODE_PATH ?? 'node_modules', '@paulirish/trace_engine');
const {analyzeTrace} = await import(path.join(engineDir, 'analyze-trace.mjs'));

let complaints = 0;
for (const level of ['warn', 'error']) {
  const original = console[level];
  console[level] = (...args) => { complaints++; original(...args); };
}
const file = process.argv[2];
if (!file) {
  console.log('usage: node tools/trace_viewer_check.mjs TRACE.json');
  process.exit(2);
}
const {parsedTrace} = await analyzeTrace(file);
const processes = [...parsedTrace.data.Renderer.processes.values()];
console.log(`${file}: ${parsedTrace.traceEvents.length} events, ${processes.length} processes`);
for (const [pid, p] of parsedTrace.data.Renderer.processes) {
  console.log(`  pid ${pid}: ${[...p.threads.values()].map(t => t.name).join(', ')}`);
}
console.log(`${complaints} warnings or errors while parsing`);
process.exit(complaints === 0 ? 0 : 1);
