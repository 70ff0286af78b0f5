{
  "targets": [
    {
      "target_name": "attach_bridge",
      "sources": ["native/attach_bridge.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    }
  ]
}
