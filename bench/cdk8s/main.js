// The cdk8s peer of bench/cdk8s_compare.py: the hardened objects the offline render writes for
// N services (Namespace, default deny, DNS egress; per service a ServiceAccount, Deployment,
// Service, HorizontalPodAutoscaler, PodDisruptionBudget and NetworkPolicy), built with
// cdk8s-plus. Where cdk8s-plus has no knob for a field the render sets (pod seccomp profile,
// topology spread, preStop sleep, named probe ports, ephemeral storage in MiB,
// PodDisruptionBudget), the construct's
// ApiObject gets a JSON patch or a plain ApiObject is used, as a cdk8s user would.
//
// Input: the JSON file named by BENCH_SPEC (written by cdk8s_compare.py from the same
// synthetic stack the render reads): {namespace, instance, partOf, services: [{name, port,
// image, version, component, minReplicas, maxReplicas, ingressFrom, egressTo}]}.
"use strict";

const fs = require("fs");
const { ApiObject, App, Chart, Duration, JsonPatch, Size, YamlOutputType } = require("cdk8s");
const kplus = require("cdk8s-plus-31");

const k8s = kplus.k8s;

const RUN_AS = 10001;
const spec = JSON.parse(fs.readFileSync(process.env.BENCH_SPEC, "utf8"));

function labelsOf(svc) {
  return {
    "app.kubernetes.io/name": svc.name,
    "app.kubernetes.io/instance": spec.instance,
    "app.kubernetes.io/version": svc.version,
    "app.kubernetes.io/component": svc.component,
    "app.kubernetes.io/part-of": spec.partOf,
    "app.kubernetes.io/managed-by": "cdk8s",
  };
}

function selectorOf(name) {
  return { "app.kubernetes.io/name": name, "app.kubernetes.io/instance": spec.instance };
}

function envName(name) {
  return `${name.toUpperCase().replace(/-/g, "_")}_URL`;
}

function namespaceObjects(cluster, chart) {
  const shared = { "app.kubernetes.io/part-of": spec.partOf, "app.kubernetes.io/managed-by": "cdk8s" };
  const psa = {};
  for (const mode of ["enforce", "audit", "warn"]) {
    psa[`pod-security.kubernetes.io/${mode}`] = "restricted";
    psa[`pod-security.kubernetes.io/${mode}-version`] = "v1.31";
  }
  new kplus.Namespace(cluster, "namespace", { metadata: { name: spec.namespace, labels: { ...shared, ...psa } } });
  new kplus.NetworkPolicy(chart, "default-deny", {
    metadata: { name: "default-deny", labels: shared },
    ingress: { default: kplus.NetworkPolicyTrafficDefault.DENY },
    egress: { default: kplus.NetworkPolicyTrafficDefault.DENY },
  });
  const kubeDns = kplus.Pods.select(chart, "kube-dns", {
    labels: { "k8s-app": "kube-dns" },
    namespaces: kplus.Namespaces.select(chart, "kube-system", { names: ["kube-system"] }),
  });
  new kplus.NetworkPolicy(chart, "allow-dns", {
    metadata: { name: "allow-dns", labels: shared },
    egress: {
      rules: [{ peer: kubeDns, ports: [kplus.NetworkPolicyPort.udp(53), kplus.NetworkPolicyPort.tcp(53)] }],
    },
  });
}

function probe(path, options) {
  return kplus.Probe.fromHttpGet(path, options);
}

function service(chart, svc, byName) {
  const labels = labelsOf(svc);
  const selector = selectorOf(svc.name);
  const metadata = { name: svc.name, labels };
  const account = new kplus.ServiceAccount(chart, `${svc.name}-sa`, { metadata, automountToken: false });
  const tmp = kplus.Volume.fromEmptyDir(chart, `${svc.name}-tmp`, "tmp", {
    medium: kplus.EmptyDirMedium.MEMORY,
    sizeLimit: Size.mebibytes(64),
  });
  const env = { PORT: kplus.EnvValue.fromValue(String(svc.port)) };
  for (const peer of svc.egressTo) {
    env[envName(peer)] = kplus.EnvValue.fromValue(`http://${peer}:${byName[peer].port}`);
  }
  const deployment = new kplus.Deployment(chart, `${svc.name}-deployment`, {
    metadata,
    podMetadata: { labels },
    select: false,
    serviceAccount: account,
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriod: Duration.seconds(30),
    minReady: Duration.seconds(10),
    progressDeadline: Duration.seconds(600),
    revisionHistoryLimit: 5,
    strategy: kplus.DeploymentStrategy.rollingUpdate({
      maxSurge: kplus.PercentOrAbsolute.absolute(1),
      maxUnavailable: kplus.PercentOrAbsolute.absolute(0),
    }),
    securityContext: {
      ensureNonRoot: true,
      user: RUN_AS,
      group: RUN_AS,
      fsGroup: RUN_AS,
      fsGroupChangePolicy: kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH,
    },
    volumes: [tmp],
    containers: [
      {
        name: svc.name,
        image: svc.image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        ports: [{ number: svc.port, name: "http", protocol: kplus.Protocol.TCP }],
        envVariables: env,
        volumeMounts: [{ path: "/tmp", volume: tmp }],
        securityContext: {
          ensureNonRoot: true,
          user: RUN_AS,
          group: RUN_AS,
          privileged: false,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: [kplus.Capability.ALL] },
          seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
        },
        resources: {
          cpu: { request: kplus.Cpu.millis(100), limit: kplus.Cpu.millis(500) },
          memory: { request: Size.mebibytes(128), limit: Size.mebibytes(256) },
        },
        readiness: probe("/ready", {
          periodSeconds: Duration.seconds(10),
          timeoutSeconds: Duration.seconds(2),
          failureThreshold: 3,
          successThreshold: 1,
        }),
        liveness: probe("/health", {
          periodSeconds: Duration.seconds(20),
          timeoutSeconds: Duration.seconds(5),
          failureThreshold: 6,
        }),
        startup: probe("/health", {
          periodSeconds: Duration.seconds(5),
          timeoutSeconds: Duration.seconds(2),
          failureThreshold: 12,
        }),
      },
    ],
  });
  deployment.select(kplus.LabelSelector.of({ labels: selector }));
  const spread = (topologyKey, whenUnsatisfiable) => ({
    labelSelector: { matchLabels: selector },
    matchLabelKeys: ["pod-template-hash"],
    maxSkew: 1,
    nodeAffinityPolicy: "Honor",
    nodeTaintsPolicy: "Honor",
    topologyKey,
    whenUnsatisfiable,
  });
  const container = "/spec/template/spec/containers/0";
  const http = k8s.IntOrString.fromString("http");
  ApiObject.of(deployment).addJsonPatch(
    JsonPatch.add("/spec/template/spec/securityContext/seccompProfile", { type: "RuntimeDefault" }),
    JsonPatch.add("/spec/template/spec/topologySpreadConstraints", [
      spread("topology.kubernetes.io/zone", "ScheduleAnyway"),
      spread("kubernetes.io/hostname", "DoNotSchedule"),
    ]),
    // cdk8s-plus writes ephemeral storage in whole GiB only. Patches hold the typed values the
    // generated Kube* classes serialise (k8s.Quantity, k8s.IntOrString), as plain strings vanish.
    JsonPatch.add(`${container}/resources/requests/ephemeral-storage`, k8s.Quantity.fromString("64Mi")),
    JsonPatch.add(`${container}/resources/limits/ephemeral-storage`, k8s.Quantity.fromString("256Mi")),
    JsonPatch.add(`${container}/lifecycle`, { preStop: { sleep: { seconds: 5 } } }),
    JsonPatch.replace(`${container}/readinessProbe/httpGet/port`, http),
    JsonPatch.replace(`${container}/livenessProbe/httpGet/port`, http),
    JsonPatch.replace(`${container}/startupProbe/httpGet/port`, http),
  );

  const svcObject = new kplus.Service(chart, `${svc.name}-service`, {
    metadata,
    type: kplus.ServiceType.CLUSTER_IP,
    ports: [{ name: "http", port: svc.port, protocol: kplus.Protocol.TCP }],
  });
  svcObject.selectLabel("app.kubernetes.io/name", svc.name);
  svcObject.selectLabel("app.kubernetes.io/instance", spec.instance);
  ApiObject.of(svcObject).addJsonPatch(
    JsonPatch.add("/spec/ports/0/targetPort", k8s.IntOrString.fromString("http")),
    JsonPatch.add("/spec/ports/0/appProtocol", "http"),
  );

  new kplus.HorizontalPodAutoscaler(chart, `${svc.name}-hpa`, {
    metadata,
    target: deployment,
    minReplicas: svc.minReplicas,
    maxReplicas: svc.maxReplicas,
    metrics: [
      kplus.Metric.resourceCpu(kplus.MetricTarget.averageUtilization(70)),
      kplus.Metric.resourceMemory(kplus.MetricTarget.averageUtilization(80)),
    ],
    scaleUp: {
      stabilizationWindow: Duration.seconds(0),
      strategy: kplus.ScalingStrategy.MAX_CHANGE,
      policies: [
        { replicas: kplus.Replicas.percent(100), duration: Duration.seconds(30) },
        { replicas: kplus.Replicas.absolute(2), duration: Duration.seconds(30) },
      ],
    },
    scaleDown: {
      stabilizationWindow: Duration.seconds(300),
      strategy: kplus.ScalingStrategy.MIN_CHANGE,
      policies: [{ replicas: kplus.Replicas.percent(25), duration: Duration.seconds(60) }],
    },
  });

  // cdk8s-plus has no PodDisruptionBudget construct.
  new ApiObject(chart, `${svc.name}-pdb`, {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata,
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selector },
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    },
  });

  const pods = (name) => kplus.Pods.select(chart, `${svc.name}-peer-${name}`, { labels: selectorOf(name) });
  new kplus.NetworkPolicy(chart, `${svc.name}-netpol`, {
    metadata,
    selector: kplus.Pods.select(chart, `${svc.name}-pods`, { labels: selector }),
    ingress: {
      default: kplus.NetworkPolicyTrafficDefault.DENY,
      rules: svc.ingressFrom.map((p) => ({ peer: pods(p), ports: [kplus.NetworkPolicyPort.tcp(svc.port)] })),
    },
    egress: {
      default: kplus.NetworkPolicyTrafficDefault.DENY,
      rules: svc.egressTo.map((p) => ({ peer: pods(p), ports: [kplus.NetworkPolicyPort.tcp(byName[p].port)] })),
    },
  });
}

const app = new App({ yamlOutputType: YamlOutputType.FILE_PER_RESOURCE });
// The Namespace is cluster-scoped: a chart of its own, so it gets no metadata.namespace.
const cluster = new Chart(app, "cluster", { disableResourceNameHashes: true });
const chart = new Chart(app, "bench", { namespace: spec.namespace, disableResourceNameHashes: true });
namespaceObjects(cluster, chart);
const byName = Object.fromEntries(spec.services.map((s) => [s.name, s]));
for (const svc of spec.services) {
  service(chart, svc, byName);
}
app.synth();
