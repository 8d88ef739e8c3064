using EphemeralPorts.Acquisition.Namespaces;

namespace EphemeralPorts.Tests.Acquisition.Namespaces;

/// <summary>
/// A namespace is named by what an operator recognises: a container id from the cgroup path
/// (Docker, containerd under Kubernetes, CRI-O, podman), else the command and pid. The cgroup
/// lines are the shapes those runtimes write, cgroup v2 and v1.
/// </summary>
public sealed class NamespaceNameTests : IDisposable
{
    private const string Id = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    private readonly string _proc = Directory.CreateTempSubdirectory("cep-names-").FullName;

    private string Name(string comm, string cgroup)
    {
        var dir = Path.Combine(_proc, "4242");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "comm"), comm + "\n");
        File.WriteAllText(Path.Combine(dir, "cgroup"), cgroup);
        using var root = new EphemeralPorts.Acquisition.Host(_proc).Open();
        return NamespaceFinder.NameOf(root, 4242);
    }

    [Theory]
    [InlineData("0::/system.slice/docker-" + Id + ".scope\n")]
    [InlineData("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + Id + ".scope\n")]
    [InlineData("0::/machine.slice/libpod-" + Id + ".scope/container\n")]
    [InlineData("12:memory:/docker/" + Id + "\n11:cpu:/docker/" + Id + "\n")]
    [InlineData("0::/kubepods/besteffort/pod1234/" + Id + "\n")]
    public void A_container_is_named_by_its_short_id(string cgroup) =>
        Name("envoy", cgroup).ShouldBe("container 3f2a9c1b7d4e (envoy, pid 4242)");

    [Theory]
    [InlineData("0::/user.slice/user-0.slice/session-1.scope\n")]
    [InlineData("0::/system.slice/haproxy.service\n")]
    public void Anything_else_is_named_by_command_and_pid(string cgroup) =>
        Name("haproxy", cgroup).ShouldBe("haproxy (pid 4242)");

    [Theory]
    [InlineData("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b.slice/cri-containerd-" + Id + ".scope\n", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")]
    [InlineData("0::/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/" + Id + "\n", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")]
    [InlineData("0::/system.slice/docker-" + Id + ".scope\n", null)]
    public void The_labels_of_a_namespace_are_its_container_and_pod(string cgroup, string? pod)
    {
        Name("envoy", cgroup);
        NamespaceFinder.ContainerOf(new EphemeralPorts.Acquisition.Host(_proc).Open(), 4242).ShouldBe(("3f2a9c1b7d4e", pod));
    }

    [Fact]
    public void A_process_that_is_gone_still_gets_a_name() =>
        NamespaceFinder.NameOf(new EphemeralPorts.Acquisition.Host(_proc).Open(), 999999).ShouldBe("? (pid 999999)");

    public void Dispose() => Directory.Delete(_proc, recursive: true);
}
