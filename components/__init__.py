"""KFP v2 component definitions: thin @dsl.component wrappers over genaug.steps."""
