"""Test support for the runtime's suite and for generated repositories' own tests.

- fixtures.py: a pytest plugin (throwaway projects, small data from the declaration, an isolated
  MLflow store);
- declared.py: columns picked by kind from the declaration, whatever data it describes;
- contract.py: the contract every repository's declaration and model definition must keep,
  collected by a repository's tests/test_contract.py.
"""
