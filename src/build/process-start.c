/*
 * Runs before the .NET runtime starts: a constructor of the executable (.init_array runs before
 * main, where NativeAOT initializes its runtime). Linked into the binary with the glibc shims
 * (src/build/GlibcFloor.targets).
 *
 * - One malloc arena (M_ARENA_MAX 1). glibc gives each new thread an arena of its own and
 *   reserves 64-128 MB of address space for it; under a small `ulimit -v` that reservation, made
 *   by the runtime's finalizer thread while the GC reserves its heap, made the start fail at random
 *   (exit 255, no output). The plugin's threads barely use malloc: one arena costs nothing.
 * - The runtime's DOTNET_* and COMPlus_* variables are removed from the environment: they tune
 *   the .NET runtime (GC region sizes, heap limits, stress modes), and one set for other programs
 *   on the host, or by a caller, must not be able to stop this binary from starting (seen:
 *   DOTNET_GCRegionSize=1, exit 255 with no output). The plugin is tuned when it is built.
 */
#include <malloc.h>
#include <string.h>

extern char **environ;

__attribute__((constructor)) static void cep_process_start(void)
{
    mallopt(M_ARENA_MAX, 1);
    if (environ == NULL)
        return;
    char **kept = environ;
    for (char **each = environ; *each != NULL; each++) {
        if (strncmp(*each, "DOTNET_", 7) != 0 && strncmp(*each, "COMPlus_", 8) != 0)
            *kept++ = *each;
    }
    *kept = NULL;
}
