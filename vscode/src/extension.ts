/**
 * The Aionix extension: starts the language server (`aio lsp`), and adds commands (Open Studio,
 * New Template, Open Template, Run, Show executions), a tree of the live server's workflows and
 * their executions, and a panel with an execution's result and history.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { LanguageClient, type LanguageClientOptions, type ServerOptions } from "vscode-languageclient/node";
import { AionixApi, type Execution } from "./api";
import { resolveConnection, type Settings } from "./config";
import { DOCUMENT_SELECTOR, serverCommand } from "./lsp";
import { newTemplateText, templateFile, templateNameOf, validateName } from "./templates";
import { executionHtml, executionNodes, message, type TreeNode, workflowNodes } from "./views";

let client: LanguageClient | undefined;

function settings(): Settings {
  const c = vscode.workspace.getConfiguration("aionix");
  return { serverUrl: c.get<string>("serverUrl") || undefined, profile: c.get<string>("profile") || undefined, lspCommand: c.get<string[]>("lspCommand") ?? [] };
}

function api(): AionixApi {
  return new AionixApi(resolveConnection(settings()));
}

class WorkflowTree implements vscode.TreeDataProvider<TreeNode> {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const item = new vscode.TreeItem(node.label, node.collapsible ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.iconPath = new vscode.ThemeIcon(node.icon);
    item.contextValue = node.kind;
    if (node.kind === "execution") item.command = { command: "aionix.showExecution", title: "Show execution", arguments: [node.executionId] };
    if (node.kind === "workflow") item.command = { command: "aionix.openTemplate", title: "Open template", arguments: [node.workflow] };
    return item;
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    try {
      if (!node) return workflowNodes(await api().listWorkflows());
      if (node.kind === "workflow" && node.workflow) return executionNodes(await api().listExecutions(node.workflow));
      return [];
    } catch (err) {
      return [message((err as Error).message)];
    }
  }
}

async function showExecution(id: string): Promise<void> {
  const a = api();
  const [execution, history] = await Promise.all([a.getExecution(id), a.history(id)]);
  const panel = vscode.window.createWebviewPanel("aionix.execution", `Execution ${id}`, vscode.ViewColumn.Beside, { enableScripts: false });
  panel.webview.html = executionHtml(execution, history, a.studioUrl(`/executions/${encodeURIComponent(id)}`));
}

async function pickExecution(workflow?: string): Promise<Execution | undefined> {
  const executions = await api().listExecutions(workflow);
  const picked = await vscode.window.showQuickPick(
    executions.map((e) => ({ label: e.execution_id, description: `${e.workflow} v${e.version} · ${e.status}`, execution: e })),
    { placeHolder: "Execution" },
  );
  return picked?.execution;
}

async function run(uri?: vscode.Uri): Promise<void> {
  const doc = uri ? await vscode.workspace.openTextDocument(uri) : vscode.window.activeTextEditor?.document;
  if (!doc) throw new Error("open a workflow file first");
  const name = templateNameOf(doc.fileName);
  const definition = /\.json$/.test(doc.fileName) ? JSON.parse(doc.getText()) : undefined;
  const inputs = await vscode.workspace.findFiles(new vscode.RelativePattern(path.dirname(doc.fileName), `${name}.input.json`));
  let input: unknown = {};
  if (inputs.length > 0) input = JSON.parse(Buffer.from(await vscode.workspace.fs.readFile(inputs[0])).toString("utf-8"));
  if (definition === undefined) {
    // YAML: the language server parses it and runs it (the code lens's command)
    // (the language server registers `aionix.lsp.*` through the client: its code lenses' commands)
    const result = (await vscode.commands.executeCommand("aionix.lsp.run", doc.uri.toString(), inputs[0]?.fsPath ?? null)) as { execution_id?: string; error?: string };
    if (result?.execution_id) await showExecution(result.execution_id);
    return;
  }
  const a = api();
  await a.saveWorkflow(name, definition);
  const execution = await a.startExecution(name, input);
  await showExecution(execution.execution_id);
}

function guard(fn: (...args: any[]) => Promise<unknown>): (...args: any[]) => Promise<void> {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (err) {
      void vscode.window.showErrorMessage(`Aionix: ${(err as Error).message}`);
    }
  };
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const tree = new WorkflowTree();
  context.subscriptions.push(
    vscode.window.registerTreeDataProvider("aionix.workflows", tree),
    vscode.commands.registerCommand("aionix.refresh", () => tree.refresh()),
    vscode.commands.registerCommand("aionix.openStudio", guard(async () => vscode.env.openExternal(vscode.Uri.parse(api().studioUrl("/workflows"))))),
    vscode.commands.registerCommand(
      "aionix.newTemplate",
      guard(async () => {
        const name = await vscode.window.showInputBox({ prompt: "Template name", validateInput: validateName });
        if (!name) return;
        const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
        const text = newTemplateText(name);
        if (folder) {
          const file = vscode.Uri.joinPath(folder, `${name}.flow.yaml`);
          await vscode.workspace.fs.writeFile(file, Buffer.from(text, "utf-8"));
          await vscode.window.showTextDocument(file);
        } else {
          await vscode.window.showTextDocument(await vscode.workspace.openTextDocument({ language: "yaml", content: text }));
        }
      }),
    ),
    vscode.commands.registerCommand(
      "aionix.openTemplate",
      guard(async (name?: string) => {
        const a = api();
        if (!name) {
          const picked = await vscode.window.showQuickPick((await a.listWorkflows()).map((t) => t.name), { placeHolder: "Template" });
          if (!picked) return;
          name = picked;
        }
        const { fileName, text } = templateFile(await a.getWorkflow(name));
        const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
        if (folder) {
          const file = vscode.Uri.joinPath(folder, fileName);
          await vscode.workspace.fs.writeFile(file, Buffer.from(text, "utf-8"));
          await vscode.window.showTextDocument(file);
        } else {
          await vscode.window.showTextDocument(await vscode.workspace.openTextDocument({ language: "json", content: text }));
        }
      }),
    ),
    vscode.commands.registerCommand("aionix.run", guard(run)),
    vscode.commands.registerCommand(
      "aionix.showExecutions",
      guard(async (workflow?: string) => {
        const e = await pickExecution(workflow);
        if (e) await showExecution(e.execution_id);
      }),
    ),
    vscode.commands.registerCommand("aionix.showExecution", guard(showExecution)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("aionix")) tree.refresh();
    }),
  );

  const s = settings();
  let cmd;
  try {
    cmd = serverCommand(s);
  } catch (err) {
    void vscode.window.showWarningMessage(`Aionix: ${(err as Error).message}`);
    return;
  }
  const serverOptions: ServerOptions = { command: cmd.command, args: cmd.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: DOCUMENT_SELECTOR,
    initializationOptions: { url: s.serverUrl, profile: s.profile },
    synchronize: { configurationSection: "aionix" },
  };
  client = new LanguageClient("aionix", "Aionix workflows", serverOptions, clientOptions);
  await client.start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
