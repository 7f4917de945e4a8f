"""UDP and TCP echo over 127.0.0.1 with Python's own socket, selectors and timeouts.

Prints a fixed transcript (no ports or times) so that a run under the preload library can be
compared with a plain run. Exit status 0 when every echo came back intact.
"""
import selectors
import socket
import sys
import threading

TIMEOUT = 10.0


def udp_echo():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(TIMEOUT)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(TIMEOUT)
    for i in range(20):
        msg = b"udp %d " % i + bytes(range(256)) * (i + 1)
        client.sendto(msg, server.getsockname())
        data, addr = server.recvfrom(65536)
        server.sendto(data, addr)
        back, _ = client.recvfrom(65536)
        if back != msg:
            print("udp echo: mismatch at", i)
            return False
    server.close()
    client.close()
    print("udp echo: 20 datagrams ok")
    return True


def tcp_server(listener, ready):
    ready.set()
    conn, _ = listener.accept()
    conn.settimeout(TIMEOUT)
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)


def tcp_echo():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)
    ready = threading.Event()
    t = threading.Thread(target=tcp_server, args=(listener, ready), daemon=True)
    t.start()
    ready.wait(TIMEOUT)
    client = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
    payload = bytes(range(256)) * 4096  # 1 MiB: many segments, partial sends and receives
    sender = threading.Thread(target=client.sendall, args=(payload,), daemon=True)
    sender.start()
    got = bytearray()
    while len(got) < len(payload):
        chunk = client.recv(65536)
        if not chunk:
            break
        got += chunk
    sender.join(TIMEOUT)
    client.shutdown(socket.SHUT_WR)
    rest = client.recv(1)
    client.close()
    t.join(TIMEOUT)
    listener.close()
    ok = bytes(got) == payload and rest == b""
    print("tcp echo: 1 MiB", "ok" if ok else "MISMATCH")
    return ok


def selector_echo():
    """Nonblocking sockets driven by the default selector (epoll on Linux)."""
    sel = selectors.DefaultSelector()
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    a.setblocking(False)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b.setblocking(False)
    sel.register(a, selectors.EVENT_READ)
    count = 0
    for i in range(10):
        b.sendto(b"sel %d" % i, a.getsockname())
        events = sel.select(TIMEOUT)
        for key, _ in events:
            key.fileobj.recvfrom(100)
            count += 1
    sel.close()
    a.close()
    b.close()
    print("selector echo:", count, "of 10")
    return count == 10


def main():
    ok = udp_echo() and tcp_echo() and selector_echo()
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", 1))
        print("connect to port 1: connected?")
        ok = False
    except ConnectionRefusedError:
        print("connect to port 1: refused")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
