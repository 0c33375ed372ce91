"""The genaug pipeline DAG and its runners."""
