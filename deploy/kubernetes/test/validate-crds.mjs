// The custom resources of a rendered overlay, validated against their CRDs'
// schemas (from @kubernetes-models, generated from KEDA's and the Prometheus
// Operator's CRDs): node validate-crds.mjs rendered.yaml
// Prints one line per resource; exits 1 when any is invalid or of a custom
// kind it has no schema for. The core kinds are kubernetes-validate's.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const models = {
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
};
const core = /^(v1|apps\/v1|policy\/v1|batch\/v1|autoscaling\/v2|networking\.k8s\.io\/v1)$/;

let failed = false;
for (const doc of parseAllDocuments(readFileSync(process.argv[2], "utf8"))) {
  const resource = doc.toJS();
  if (!resource) continue;
  const kind = `${resource.apiVersion}/${resource.kind}`;
  const name = `${resource.kind}/${resource.metadata?.name}`;
  const Model = models[kind];
  if (!Model) {
    if (!core.test(resource.apiVersion)) {
      console.log(`FAIL ${name}: no schema here for ${kind}`);
      failed = true;
    }
    continue;
  }
  try {
    new Model(resource).validate();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
