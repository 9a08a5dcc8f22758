// Two hardened services and their namespace, declared from TypeScript through the hardened-k8s
// component package. The components run in the package's plugin (the Python library), so this
// program gets the same Kubernetes objects a Python program gets for the same inputs.
//
// `program` is the whole program as a function: the Automation API runs it inline
// (automation.ts), and it reads its inputs from stack config when it runs, never at import.
import * as pulumi from "@pulumi/pulumi";
import * as hardened from "@pulumi/hardened-k8s";

/** The image both services run unless `image` is set: any image serving /ready and /health
 * on $PORT, pinned by digest (the policy refuses a tag). */
export const DEFAULT_IMAGE = "quay.io/ecosystem-appeng/hello@sha256:" + "1".repeat(64);
/** `app.kubernetes.io/part-of` of every object. */
export const PART_OF = "typescript-service";

/** What the program needs to know; the stack config keys of the same names. */
export interface ServicesArgs {
    /** The namespace the program creates (Pod Security `restricted`, default deny). */
    namespace: string;
    /** The image both services run, `repo@sha256:<digest>`. */
    image: string;
}

/** The stack outputs. */
export type ServicesOutputs = {
    namespace: pulumi.Output<string>;
    webDns: pulumi.Output<string>;
    apiDns: pulumi.Output<string>;
};

/** A namespace, an `api` service that only `web` may call, and `web`, autoscaled, calling it. */
export function hardenedServices(args: ServicesArgs): ServicesOutputs {
    const namespace = new hardened.SecureNamespace("typescript-service", {
        namespace: args.namespace,
        labels: { "app.kubernetes.io/part-of": PART_OF },
    });
    const api = new hardened.HardenedService("api", {
        namespace: namespace.namespaceName,
        image: args.image,
        port: 8000,
        partOf: PART_OF,
        // web's pod labels (name and instance default to the component's name); naming web's
        // `selector` output here would make the two services wait on each other.
        ingressFrom: [{ selector: { "app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web" }, port: 8080 }],
    });
    const web = new hardened.HardenedService("web", {
        namespace: namespace.namespaceName,
        image: args.image,
        port: 8080,
        partOf: PART_OF,
        autoscaling: { minReplicas: 2, maxReplicas: 4 },
        resources: { limits: { memory: "512Mi" } },
        // Outputs of another component go in as they are: its pod selector and its DNS name.
        egressTo: [{ selector: api.selector, port: 8000 }],
        env: { API_URL: pulumi.interpolate`http://${api.dnsName}:8000` },
    });
    return { namespace: namespace.namespaceName, webDns: web.dnsName, apiDns: api.dnsName };
}

/** The program: `hardenedServices` with the stack's config (`namespace`, default
 * `hello-<stack>`; `image`, default {@link DEFAULT_IMAGE}). */
export async function program(): Promise<ServicesOutputs> {
    const config = new pulumi.Config();
    return hardenedServices({
        namespace: config.get("namespace") ?? `hello-${pulumi.getStack()}`,
        image: config.get("image") ?? DEFAULT_IMAGE,
    });
}
