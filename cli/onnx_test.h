/* onnx_test.h — `kiln onnx-test [DIR]`, the ONNX node conformance runner. */
#ifndef KN_CLI_ONNX_TEST_H
#define KN_CLI_ONNX_TEST_H

/* argv[0] is "onnx-test"; returns the exit code (1 when a test failed). */
int kn_cli_onnx_test(int argc, char **argv);

#endif
