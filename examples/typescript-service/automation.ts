// Runs the program of index.ts inline with the Pulumi Automation API:
//
//   node bin/automation.js preview|up|destroy [--stack dev] [--config key=value]...
//
// The Automation API hosts the Node.js language runtime in this process and drives the `pulumi`
// CLI found on PATH, which needs no Node.js language plugin for an inline program. The CLI
// takes its backend, home and passphrase from the environment as usual (PULUMI_BACKEND_URL,
// PULUMI_HOME, PULUMI_CONFIG_PASSPHRASE), the Kubernetes provider its cluster from KUBECONFIG,
// and the engine finds `pulumi-resource-hardened-k8s` (installed with the library) on PATH.
// The engine's output goes to stderr; stdout gets one JSON document with the result.
import { EngineEvent, LocalWorkspace } from "@pulumi/pulumi/automation";
import { program } from "./index";

export const PROJECT = "typescript-service";

interface Options {
    command: string;
    stack: string;
    config: Record<string, string>;
}

function parse(argv: string[]): Options {
    const [command, ...rest] = argv;
    if (!["preview", "up", "destroy"].includes(command)) {
        throw new Error(`usage: automation.js preview|up|destroy [--stack NAME] [--config KEY=VALUE]... (got ${command})`);
    }
    const options: Options = { command, stack: "dev", config: {} };
    for (let i = 0; i < rest.length; i += 2) {
        const [flag, value] = [rest[i], rest[i + 1]];
        if (value === undefined) {
            throw new Error(`${flag} needs a value`);
        } else if (flag === "--stack") {
            options.stack = value;
        } else if (flag === "--config" && value.includes("=")) {
            const at = value.indexOf("=");
            options.config[value.slice(0, at)] = value.slice(at + 1);
        } else {
            throw new Error(`unknown option ${flag} ${value}`);
        }
    }
    return options;
}

async function main(): Promise<void> {
    const options = parse(process.argv.slice(2));
    const stack = await LocalWorkspace.createOrSelectStack({ stackName: options.stack, projectName: PROJECT, program });
    for (const [key, value] of Object.entries(options.config)) {
        await stack.setConfig(key, { value });
    }
    const onOutput = (out: string) => process.stderr.write(out);
    let result: unknown;
    if (options.command === "preview") {
        // Each planned step with the inputs the engine would send the resource's provider.
        const steps: object[] = [];
        const onEvent = (event: EngineEvent) => {
            const step = event.resourcePreEvent?.metadata;
            if (step) {
                steps.push({ op: step.op, urn: step.urn, type: step.type, inputs: step.new?.inputs ?? {} });
            }
        };
        const preview = await stack.preview({ onOutput, onEvent });
        result = { changeSummary: preview.changeSummary, steps };
    } else if (options.command === "up") {
        const up = await stack.up({ onOutput });
        const outputs = Object.fromEntries(Object.entries(up.outputs).map(([k, v]) => [k, v.value]));
        // The state: every resource with the inputs the engine sent its provider.
        const state = await stack.exportStack();
        result = { summary: up.summary.resourceChanges, outputs, resources: state.deployment.resources };
    } else {
        const destroy = await stack.destroy({ onOutput });
        result = { summary: destroy.summary.resourceChanges };
    }
    process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
});
