"""The local target's data plane: what kwok's empty pods would serve if they ran for real.

For each Running pod the harness runs the real service binary, exposes every Kubernetes Service
on loopback forwarding to the processes of the pods its selector matches right now, and honours
Istio VirtualServices for calls between pods. ``routing`` is the pure core that decides where one
call goes; it reads no cluster and opens no socket.
"""
