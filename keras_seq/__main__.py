from keras_seq.cli import main

main()
