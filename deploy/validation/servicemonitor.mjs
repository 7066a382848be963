// Validates ServiceMonitor objects (JSON, one array on stdin) against the Prometheus Operator's
// CRD schema, as generated into @kubernetes-models/prometheus-operator. Prints one line per
// invalid object and exits 1 if any. Run by deploy/validation/validate.py.
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = 0;
for (const { where, object } of JSON.parse(input)) {
  try {
    new ServiceMonitor(object).validate();
  } catch (e) {
    failed += 1;
    console.log(`${where}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
