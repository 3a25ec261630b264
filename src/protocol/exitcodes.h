/*
 * exitcodes.h - the exit codes that pai itself issues or recognises, named
 * once for every part: the engine's lifecycle (stop, completion, node lost,
 * preemption), the agent and its runtimes (OOM, start failures, lost
 * attempts) and the exit-code table (exitspec.h, which includes this).
 *
 * Values are OpenPAI's (k8s-job-exit-spec, src/protocol/exit-spec.yaml);
 * tests/unit/test_protocol.c checks that each named code is a row of the
 * table with the phrase in its comment.  Kept apart from exitspec.h so that
 * the runtime and the pure lifecycle need no JSON or table code to name a
 * code.
 */
#ifndef PAI_PROTOCOL_EXITCODES_H
#define PAI_PROTOCOL_EXITCODES_H

/* Rows of OpenPAI's table, with their phrase. */
enum {
    EXIT_SUCCEEDED = 0,                   /* Succeeded */
    EXIT_POD_EXTERNAL_DELETED = -101,     /* PodExternalDeleted */
    EXIT_CREATION_TRANSIENT = -120,       /* PodCreationTransientError */
    EXIT_CREATION_PERMANENT = -200,       /* PodCreationPermanentError */
    EXIT_STOP_REQUESTED = -210,           /* StopFrameworkRequested (user stop) */
    EXIT_ATTEMPT_COMPLETION = -220,       /* FrameworkAttemptCompletion */
    EXIT_DELETE_TASK_REQUESTED = -230,    /* DeleteTaskRequested */
    EXIT_FAILED_NO_CONTAINER = -300,      /* PodFailedWithoutFailedContainer */
    EXIT_CREATION_UNKNOWN = -310,         /* PodCreationUnknownError */
    EXIT_EVICTED = -1000,                 /* PodEvicted */
    EXIT_NODE_LOST = -1001,               /* PodNodeLost */
    EXIT_INSUFFICIENT_RESOURCE = -1002,   /* PodScheduledToInsufficientResourceNode */
    EXIT_PREEMPTED = -1003,               /* PodPreemptedForCriticalPod */
    EXIT_DEADLINE_EXCEEDED = -1004,       /* PodDeadlineExceeded */
    EXIT_ADMISSION_FORBIDDEN = -1005,     /* PodNodeAdmissionForbidden */
    EXIT_CREATE_FRAMEWORK_FAILED = -1100, /* CreateFrameworkPermanentFailed */
    EXIT_OOM_KILLED = -1200,              /* UserContainerDockerOOMKilled */
    EXIT_CONTAINER_CREATION = -1201,      /* ContainerDockerCreationError */
    EXIT_CMD_PERMISSION_DENIED = -1202,   /* ContainerDockerStartCmdPermissionDenied */
    EXIT_CMD_NOT_FOUND = -1203,           /* ContainerDockerStartCmdNotFound */
    EXIT_CONTAINER_START_UNKNOWN = -1204, /* ContainerDockerStartUnknownError */
    EXIT_GPU_NOT_FOUND = -1205,           /* ContainerGpuDeviceNotFoundError */
    EXIT_INIT_OOM_KILLED = -1300,         /* InitContainerDockerOOMKilled */
    EXIT_SIGKILL = 137,                   /* ContainerSigKillReceived */
    EXIT_SIGTERM = 143,                   /* ContainerSigTermReceived */
    EXIT_USER_ERROR = 220,                /* UserCommandExitWithError */
    EXIT_SSH_BARRIER_TIMEOUT = 249,       /* PAIRuntimeSSHBarrierTimeout */
    EXIT_BARRIER_TRANSIENT = 250,         /* FrameworkBarrierTransientFailed */
    EXIT_GANG_TIMEOUT = 251,              /* JobGangAllocationTimeout */
    EXIT_BARRIER_PERMANENT = 252,         /* FrameworkBarrierPermanentFailed */
    EXIT_PORT_CONFLICT = 253,             /* ContainerPortConflict */
    EXIT_IMAGE_NOT_EXISTS = 254,          /* ContainerImageNotExists */
    EXIT_RUNTIME_UNKNOWN = 255,           /* PAIRuntimeUnknownFailed */
    EXIT_UNDEFINED_NEGATIVE = -8000,      /* ContainerUndefinedNegativeExitCode */
    EXIT_UNDEFINED_POSITIVE = 256,        /* PAIRuntimeExitAbnormally */
};

/* Codes that are not rows of the table.  The shell's own (POSIX): what a
 * task's child exits with when exec fails, as bash does (a container
 * runtime's 127 is reported as EXIT_CMD_NOT_FOUND).  A task killed by
 * signal N reports EXIT_SIGNAL_BASE + N (137 SIGKILL, 143 SIGTERM). */
enum {
    EXIT_SHELL_CANNOT_EXECUTE = 126,
    EXIT_SHELL_NOT_FOUND = 127,
    EXIT_SIGNAL_BASE = 128,
};

#endif
