# Type stubs of the compiled module shunt._shunt (bindings/module.cc). This file is the contract
# between the bindings and the scenarios: keep both in step. Times are virtual nanoseconds unless
# a name says otherwise. Every error is a ShuntError with a message.
from typing import Any, Iterable, Mapping, Sequence

__version__: str

class ShuntError(RuntimeError): ...

def config_vars() -> list[dict[str, str]]:
    """Every SHUNT_* variable: name, default, kind (int|choice|string), range ("MIN .. MAX" or
    "a|b|c"; "" for strings), help (docs/config.md)."""

class Config:
    """A stack and NIC-model configuration (shunt::Config): defaults, then `profile`, then `vars`.
    Names are SHUNT_* variables, with or without the prefix, any case: Config(mlx5_inline=256)."""
    def __init__(self, profile: str | None = None, **vars: str | int | float) -> None: ...
    def set(self, name: str, value: str | int | float) -> None: ...  # ShuntError if invalid
    def get(self, name: str) -> str: ...
    def as_dict(self) -> dict[str, str]: ...

class LatencyStats:
    """A distribution of latencies (ns)."""
    def __init__(self, samples: Sequence[int]) -> None: ...
    count: int
    min: int
    max: int
    mean: float
    p50: int
    p90: int
    p99: int
    p999: int
    def percentile(self, p: float) -> int: ...  # nearest rank, 0 < p <= 100
    def histogram(self, bins: int = 50) -> list[tuple[int, int, int]]: ...  # (lo, hi, count), log-spaced
    samples: list[int]
    def as_dict(self) -> dict[str, int | float]: ...  # count, min, max, mean, p50, p90, p99, p999
    def __len__(self) -> int: ...

class PacketTimeline:
    """One frame's path through a simulated mlx5 NIC (None: never reached)."""
    seq: int
    tx: bool
    bytes: int
    wqe_index: int
    doorbell: int | None
    doorbell_seen: int | None
    wqe_fetched: int | None
    dma_done: int | None
    wire_start: int | None
    wire_end: int | None
    cqe: int | None

class PingPongResult:
    latency: LatencyStats      # round-trip times
    sent: int
    completed: int
    lost: int
    started: int
    finished: int
    def ok(self) -> bool: ...
    error: str

class FlowResult:
    sent: int
    received: int
    completed: bool
    mismatch: int | None       # first differing byte offset
    started: int
    connected: int | None
    finished: int | None
    goodput_bps: float

class BulkResult:
    flows: list[FlowResult]
    bytes: int
    started: int
    finished: int | None
    retransmits: int
    completed: bool
    goodput_bps: float
    error: str
    def ok(self) -> bool: ...

class ChurnResult:
    opened: int
    closed: int
    failed: int
    connect_times: LatencyStats
    started: int
    finished: int
    wall_seconds: float
    per_virtual_second: float
    error: str
    def ok(self) -> bool: ...

class MulticastResult:
    sent: int
    received: list[int]               # per receiver
    latency: list[LatencyStats]       # one-way, per receiver
    duplicates: int
    corrupt: int
    error: str
    def ok(self) -> bool: ...

class Network:
    """Shunt hosts in virtual time. Workload methods release the GIL while the simulation runs
    and raise ShuntError only for bad arguments (a failed workload returns a result whose
    error says why)."""
    @property
    def size(self) -> int: ...
    @property
    def now(self) -> int: ...
    def address(self, host: int, ipv6: bool = False) -> str: ...
    def is_shunt(self, host: int) -> bool: ...
    def run_for(self, ns: int) -> None: ...
    def counters(self, host: int) -> dict[str, int]: ...     # stack (and NIC model) counters
    def timelines(self, host: int) -> list[PacketTimeline]: ...
    @property
    def network_drops(self) -> int: ...
    def udp_pingpong(self, client: int = 0, server: int = 1, payload: int = 64, count: int = 1000,
                     warmup: int = 10, ipv6: bool = False, port: int = 7000,
                     timeout_ns: int = 0) -> PingPongResult: ...
    def tcp_pingpong(self, client: int = 0, server: int = 1, payload: int = 64, count: int = 1000,
                     warmup: int = 10, ipv6: bool = False, port: int = 7000,
                     timeout_ns: int = 0) -> PingPongResult: ...
    def tcp_bulk(self, flows: Iterable[tuple[int, int, int]] = ((0, 1, 1 << 20),),
                 port: int = 5001, ipv6: bool = False, chunk: int = 65536, sndbuf: int = 0,
                 rcvbuf: int = 0, start_spread_ns: int = 0,
                 timeout_ns: int = 60_000_000_000) -> BulkResult: ...   # flows: (from, to, bytes)
    def churn(self, client: int = 0, server: int = 1, count: int = 10000, parallel: int = 1,
              request: int = 0, ipv6: bool = False, port: int = 6000,
              timeout_ns: int = 600_000_000_000) -> ChurnResult: ...
    def close(self) -> None: ...   # destroys the simulation; later calls raise ShuntError
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> "Network": ...
    def __exit__(self, *exc: Any) -> None: ...   # close()
    def multicast_fanout(self, sender: int = 0, receivers: Sequence[int] = (1,),
                         group: str = "239.1.2.3", port: int = 9000, payload: int = 64,
                         count: int = 1000, interval_ns: int = 10_000,
                         timeout_ns: int = 10_000_000_000) -> MulticastResult: ...

class SimNetwork(Network):
    """The virtual-time harness: `hosts` stacks on one shared SimLink (a broadcast segment,
    or with queue > 0 a switch), each behind the simulated mlx5 NIC (nic="mlx5sim") or straight
    on its port (nic="sim"). Host i is 10.0.0.(i+1)/24 and fd00::(i+1)/64.
    queue: 0 = a shared segment where nothing limits what arrives at a host (n senders to one
    host deliver n times the link rate); > 0 (up to 1000000 frames) = a switch whose port to
    each host serializes the frames to it at rate_bps behind a drop-tail queue of that many
    frames (drops count in network_drops)."""
    def __init__(self, hosts: int = 2, nic: str = "mlx5sim", rate_bps: int = 10_000_000_000,
                 delay_ns: int = 1000, mtu: int = 1500, loss: float = 0.0, seed: int = 1,
                 config: Config | None = None, pcap: str | None = None,
                 queue: int = 0) -> None: ...

class Ns3Network(Network):
    """An ns-3 topology of Shunt hosts (nicmodel/ns3), deterministic for a seed and run. One at
    a time per process (ns-3 has one simulator): building a second while one exists raises."""
    @staticmethod
    def two_hosts(rate_bps: int = 10_000_000_000, delay_ns: int = 1000, mtu: int = 1500,
                  queue: int = 1000, loss: float = 0.0, medium: str = "ethlink",
                  seed: int = 1, run: int = 1, config: Config | None = None,
                  pcap: str | None = None) -> "Ns3Network": ...
    @staticmethod
    def dumbbell(left: int = 1, right: int = 1, edge_rate_bps: int = 10_000_000_000,
                 edge_delay_ns: int = 1000, bottleneck_rate_bps: int = 1_000_000_000,
                 bottleneck_delay_ns: int = 10_000, queue_disc: str = "droptail",
                 queue_packets: int = 100, loss: float = 0.0, seed: int = 1, run: int = 1,
                 config: Config | None = None, pcap: str | None = None) -> "Ns3Network": ...
    @staticmethod
    def star(hosts: int = 4, rate_bps: int = 10_000_000_000, delay_ns: int = 1000,
             mtu: int = 1500, queue: int = 1000, loss: float = 0.0, seed: int = 1,
             run: int = 1, config: Config | None = None,
             pcap: str | None = None) -> "Ns3Network": ...
    def close(self) -> None: ...   # destroys the simulation (also on garbage collection)
    @property
    def pcap_files(self) -> list[str]: ...
