{
  "targets": [
    {
      "target_name": "layers_native",
      "sources": ["native/layers_native.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
