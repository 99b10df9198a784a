/** Documents as the records the functions return (see validators.ts). */
import type { Doc } from "../_generated/dataModel";
import type {
  ChatChunkRecord,
  ChatMessageRecord,
  ChatSessionRecord,
  CommandRecord,
  JobRecord,
  MachineRecord,
  PermissionPolicy,
  PermissionRecord,
  QuestionRecord,
  UserRecord,
  WorkerRecord,
} from "./validators";

export function userRecord(user: Doc<"users">): UserRecord {
  return { userId: user.userId, username: user.username, createdAt: user.createdAt };
}

export function machineRecord(machine: Doc<"machines">): MachineRecord {
  return {
    machineId: machine.machineId,
    userId: machine.userId,
    name: machine.name,
    status: machine.status,
    createdAt: machine.createdAt,
    lastHeartbeat: machine.lastHeartbeat ?? null,
    rootDirectory: machine.rootDirectory ?? null,
  };
}

export function workerRecord(worker: Doc<"workers">): WorkerRecord {
  return {
    workerId: worker.workerId,
    machineId: worker.machineId,
    directory: worker.directory,
    status: worker.status,
    createdAt: worker.createdAt,
    name: worker.name ?? null,
    approvedAt: worker.approvedAt ?? null,
    approvedBy: worker.approvedBy ?? null,
    lastHeartbeat: worker.lastHeartbeat ?? null,
    models: worker.models,
    agents: worker.agents ?? [],
    commands: worker.commands ?? [],
    // Absent on workers from before policies existed: they get the safe defaults.
    permissionPolicy: worker.permissionPolicy ?? DEFAULT_PERMISSION_POLICY,
    problem: worker.problem ?? null,
  };
}

/** Ask before bash, edits and fetches; nothing outside the worker's folder. */
export const DEFAULT_PERMISSION_POLICY: PermissionPolicy = {
  bash: "ask",
  edit: "ask",
  webfetch: "ask",
  externalDirectory: "deny",
};

export function chatSessionRecord(session: Doc<"chatSessions">): ChatSessionRecord {
  return {
    chatSessionId: session.chatSessionId,
    workerId: session.workerId,
    userId: session.userId,
    model: session.model,
    status: session.status,
    createdAt: session.createdAt,
    lastActivity: session.lastActivity,
    agentSessionId: session.agentSessionId ?? null,
    title: session.title ?? null,
    agent: session.agent ?? null,
    undoneFrom: session.undoneFrom ?? null,
    undoAgentId: session.undoAgentId ?? null,
    undoneAt: session.undoneAt ?? null,
    undoRequests: session.undoRequests ?? 0,
    undoApplied: session.undoApplied ?? 0,
    undoError: session.undoError ?? null,
  };
}

export function chatMessageRecord(message: Doc<"chatMessages">): ChatMessageRecord {
  return {
    messageId: message.messageId,
    chatSessionId: message.chatSessionId,
    role: message.role,
    content: message.content,
    status: message.status,
    timestamp: message.timestamp,
    replyTo: message.replyTo ?? null,
    error: message.error ?? null,
    abortRequested: message.abortRequested,
    contentSegments: message.contentSegments ?? 0,
    agent: message.agent ?? null,
  };
}

export function chatChunkRecord(chunk: Doc<"chatChunks">): ChatChunkRecord {
  return {
    chunkId: chunk.chunkId,
    messageId: chunk.messageId,
    chatSessionId: chunk.chatSessionId,
    chunk: chunk.chunk,
    sequence: chunk.sequence,
    timestamp: chunk.timestamp,
    partId: chunk.partId ?? null,
    offset: chunk.offset ?? null,
  };
}

export function permissionRecord(request: Doc<"permissionRequests">): PermissionRecord {
  return {
    permissionId: request.permissionId,
    chatSessionId: request.chatSessionId,
    messageId: request.messageId,
    agentRequestId: request.agentRequestId,
    tool: request.tool,
    description: request.description,
    status: request.status,
    createdAt: request.createdAt,
    answer: request.answer ?? null,
    ...(request.file === undefined ? {} : { file: request.file, diff: request.diff, diffSize: request.diffSize }),
  };
}

export function questionRecord(request: Doc<"questionRequests">): QuestionRecord {
  return {
    questionId: request.questionId,
    chatSessionId: request.chatSessionId,
    messageId: request.messageId,
    agentRequestId: request.agentRequestId,
    questions: request.questions,
    status: request.status,
    createdAt: request.createdAt,
    answers: request.answers ?? null,
    dismissed: request.dismissed,
  };
}

export function commandRecord(command: Doc<"commands">): CommandRecord {
  return {
    commandId: command.commandId,
    machineId: command.machineId,
    userId: command.userId,
    kind: command.kind,
    arguments: command.arguments,
    status: command.status,
    createdAt: command.createdAt,
    progress: command.progress,
    progressLine: command.progressLine ?? null,
    result: command.result ?? null,
    error: command.error ?? null,
    cancelRequested: command.cancelRequested,
    startedAt: command.startedAt ?? null,
    finishedAt: command.finishedAt ?? null,
  };
}

export function jobRecord(job: Doc<"jobs">): JobRecord {
  return {
    jobId: job.jobId,
    userId: job.userId,
    workerId: job.workerId ?? null,
    name: job.name,
    model: job.model,
    prompt: job.prompt,
    cron: job.cron,
    timezone: job.timezone,
    enabled: job.enabled,
    sessionMode: job.sessionMode,
    createdAt: job.createdAt,
    nextRunAt: job.nextRunAt ?? null,
    chatSessionId: job.chatSessionId ?? null,
    pausedReason: job.pausedReason ?? null,
  };
}
