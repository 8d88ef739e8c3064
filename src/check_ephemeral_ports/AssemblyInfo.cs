// The plugin reads Linux /proc and talks to Linux netlink: it is Linux-only by nature.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
